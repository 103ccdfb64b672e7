"""The SegFace inference speed harness (formulations vs each other and BiSeNet), on tiny inputs."""

import pytest

from lt_faceparse.speed.segface import (bench_segface, format_ratio_rows, format_rows, inference_ratio_rows,
                                        time_sections)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def rows():
    return bench_segface(["mobilenet"], [64], rounds=2, runs=1, warmup=0, channels_last=True)


def test_one_row_per_setting(rows):
    assert [(r["model"], r["formulation"]) for r in rows] == [
        ("segface", "auto (cpu)"), ("segface", "literal"), ("bisenet", "reference")]
    for r in rows:
        assert r["resolution"] == 64 and r["device"] == "cpu" and r["channels_last"] is True
        assert len(r["latency_ms_rounds"]) == 2
        assert r["latency_ms_median"] == pytest.approx(sum(r["latency_ms_rounds"]) / 2)  # median of two
        assert r["fps"] == pytest.approx(1e3 / r["latency_ms_median"])
        assert "kernel_thp" in r and "thp_mem_alloc_enable" in r


def test_both_formulations_are_the_same_model(rows):
    default, literal, _ = rows
    assert default["params"] == literal["params"]
    # the folded fusion skips the 4D -> D fuse conv on the stride-4 grid
    assert default["gflops"] < literal["gflops"]


def test_table_says_how_numbers_were_obtained(rows):
    table = format_rows(rows)
    assert table.count("| segface |") == 2 and "| bisenet | resnet18 | reference | 64 | cpu |" in table
    assert "median over rounds" in table and "THP_MEM_ALLOC_ENABLE=" in table


def test_sections_add_up_to_the_whole_pass():
    from lt_faceparse.models import build_model

    parts = time_sections(build_model("segface", backbone="mobilenet"), 64, runs=1, warmup=0)
    assert list(parts) == ["backbone", "fusion", "block 0", "block 1", "final attention", "head", "other", "total"]
    assert all(v >= 0 for v in parts.values())
    assert sum(v for k, v in parts.items() if k != "total") == pytest.approx(parts["total"], rel=1e-9)
    assert parts["block 0"] > 0 and parts["head"] > 0


def test_inference_ratios_are_against_literal_eager_of_the_same_batch_and_dtype():
    rows = inference_ratio_rows(["mobilenet"], device="cpu", resolution=64, comparisons=[(2, "fp32", False)],
                                rounds=2, runs=1, warmup=0)
    assert [(r["setting"], r["formulation"]) for r in rows] == [("literal eager", "literal"),
                                                                 ("default eager", "auto (cpu)")]
    assert all(r["batch_size"] == 2 and r["dtype"] == "fp32" for r in rows)
    assert rows[0]["ratio_to_literal"] == 1.0
    assert rows[1]["ratio_to_literal"] == pytest.approx(rows[1]["latency_ms_median"] / rows[0]["latency_ms_median"])
    table = format_ratio_rows(rows)
    assert "| mobilenet | 64 | 2 | fp32 | cpu | default eager [auto (cpu)] |" in table
    assert "median over interleaved rounds" in table


def test_inference_ratios_time_the_compile_option(monkeypatch):
    from lt_faceparse.engine import compile as compile_module

    monkeypatch.setattr(compile_module.torch, "compile", lambda module, mode=None: module)  # the wiring, not Inductor
    rows = inference_ratio_rows(["mobilenet"], device="cpu", resolution=64, comparisons=[(1, "fp32", True)],
                                rounds=1, runs=1, warmup=0)
    compiled = rows[2]
    assert compiled["setting"] == "default compiled (default)"  # Inductor's default mode on the CPU
    assert compiled["compiled"] is True and compiled["latency_ms_median"] > 0
    assert "compile FAILED" not in format_ratio_rows(rows)
