import pytest

from segface.bench import bench_segface, format_rows, time_sections


@pytest.fixture(scope="module")
def rows():
    return bench_segface(["mobilenet"], [64], rounds=2, runs=1, warmup=0, channels_last=True)


def test_one_row_per_setting(rows):
    assert [(r["model"], r["formulation"]) for r in rows] == [
        ("segface", "fast"), ("segface", "literal"), ("bisenet", "reference")]
    for r in rows:
        assert r["resolution"] == 64 and r["device"] == "cpu" and r["channels_last"] is True
        assert len(r["latency_ms_rounds"]) == 2
        assert r["latency_ms_median"] == pytest.approx(sum(r["latency_ms_rounds"]) / 2)  # median of two
        assert r["fps"] == pytest.approx(1e3 / r["latency_ms_median"])
        assert "kernel_thp" in r and "thp_mem_alloc_enable" in r


def test_both_formulations_are_the_same_model(rows):
    fast, literal, _ = rows
    assert fast["params"] == literal["params"]
    # the folded fusion skips the 4D -> D fuse conv on the stride-4 grid
    assert fast["gflops"] < literal["gflops"]


def test_table_says_how_numbers_were_obtained(rows):
    table = format_rows(rows)
    assert table.count("| segface |") == 2 and "| bisenet | resnet18 | reference | 64 | cpu |" in table
    assert "median over rounds" in table and "THP_MEM_ALLOC_ENABLE=" in table


def test_sections_add_up_to_the_whole_pass():
    from segface.model import SegFace

    parts = time_sections(SegFace("mobilenet"), 64, runs=1, warmup=0)
    assert list(parts) == ["backbone", "fusion", "block 0", "block 1", "final attention", "head", "other", "total"]
    assert all(v >= 0 for v in parts.values())
    assert sum(v for k, v in parts.items() if k != "total") == pytest.approx(parts["total"], rel=1e-9)
    assert parts["block 0"] > 0 and parts["head"] > 0
