import math

import numpy as np
import pytest

from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.records import ResultRecord, build_record, head_tail_means, protocol_of, reported_record, save_record
from lt_faceparse.reporting.leaderboard import build_leaderboard, collect_records, group_records, run_leaderboard
from lt_faceparse.reporting.tables import to_csv, to_markdown
from lt_faceparse.taxonomy import get_taxonomy

TAX = get_taxonomy("celebamask-hq")
K = TAX.num_classes
NECK, NECKLACE, SKIN = TAX.id_of("neck"), TAX.id_of("neck_l"), TAX.id_of("skin")
PROTO = {"dataset": "synthface-lt", "split": "test", "merge": "segface", "protocol": "input",
         "checkpoint_rule": "last", "pretraining": "none", "resolution": 64}


def image_confusion(necklace_to_neck: int) -> np.ndarray:
    """One image: 100 px of every class predicted right, except ``necklace_to_neck`` necklace
    pixels predicted as neck."""
    cm = np.eye(K, dtype=np.int64) * 100
    cm[NECKLACE, NECKLACE] -= necklace_to_neck
    cm[NECKLACE, NECK] += necklace_to_neck
    return cm


def make_record(model: str, necklace_to_neck: list[int], **prov) -> ResultRecord:
    cms = [image_confusion(m) for m in necklace_to_neck]
    stats = PerImageStats(
        gt=np.stack([c.sum(1) for c in cms]), pred=np.stack([c.sum(0) for c in cms]),
        inter=np.stack([np.diagonal(c) for c in cms]), image_ids=np.arange(len(cms)),
        names=tuple(f"img{i}" for i in range(len(cms))),
    )
    return build_record(sum(cms), TAX, {**PROTO, "model": model, **prov}, per_image=stats)


def test_head_tail_means_by_hand():
    rec = make_record("b", [50, 50])
    head, tail = head_tail_means(rec, TAX)
    # neck: gt 200, pred 300, inter 200 -> 0.8; other 13 head classes 1.0
    assert head == pytest.approx((13 * 1.0 + 0.8) / 14)
    # necklace: gt 200, pred 100, inter 100 -> 2/3; eye_g, hat, ear_r 1.0
    assert tail == pytest.approx((3 * 1.0 + 2 / 3) / 4)


def test_grouping_separates_protocols_and_marks_unknown():
    a = make_record("a", [0, 0])
    b = make_record("b", [50, 50])
    native = make_record("c", [0, 0], protocol="native")
    nosplit = make_record("d", [0, 0], split=None)
    groups = group_records([a, native, b, nosplit])
    assert [len(m) for _, m in groups] == [2, 1, 1]
    assert groups[1][0]["protocol"] == "native"
    assert groups[2][0]["split"] == "unknown"

    board = build_leaderboard([a, native, b, nosplit])
    assert len(board) == 3
    titles = [g.table.title for g in board.groups]
    assert "input scoring" in titles[0] and "native scoring" in titles[1]
    assert any("do not state ['split']" in n for n in board.groups[2].notes)
    # no table holds rows of two protocols
    for g in board.groups:
        assert len({tuple(protocol_of(r).values()) for r in g.records}) == 1


def test_table_values_order_and_bold_best():
    a = make_record("a", [0, 0])
    b = make_record("b", [50, 50])
    board = build_leaderboard([b, a])
    table = board.groups[0].table
    assert [r["method"] for r in table.rows] == ["a @64", "b @64"]  # best mean F1 first
    headers = [c.header for c in table.columns]
    class_headers = [h for h in headers if h in TAX.display_names]
    assert class_headers == [TAX[i].display for i in TAX.display_order]  # paper column order
    md = to_markdown(table)
    row_a = next(line for line in md.splitlines() if line.startswith("| a @64"))
    row_b = next(line for line in md.splitlines() if line.startswith("| b @64"))
    assert "**100.00**" in row_a and "66.67" in row_b and "**66.67**" not in row_b
    csv_text = to_csv(table)
    mean_b = (16 * 1.0 + 0.8 + 2 / 3) / 18
    assert f"{100 * mean_b:.2f}" in csv_text.splitlines()[2]
    assert "Mean F1" in headers and "mIoU (no bg)" in headers and "mIoU (w/ bg)" in headers
    assert "Head F1" in headers and "Tail F1" in headers
    assert "FPS" not in headers  # nobody was timed


def test_delta_view_marks_significant_differences():
    a = make_record("a", [0] * 12)
    b = make_record("b", [50] * 12)
    board = build_leaderboard([a, b], reference="a @64", n_resamples=200)
    delta = board.groups[0].delta
    assert len(delta.rows) == 1
    row = delta.rows[0]
    assert row["method"] == "b @64"
    assert row[f"d_{NECKLACE}"] == "-33.33*"  # every resample agrees: significant
    assert row[f"d_{NECK}"] == "-20.00*"
    assert row[f"d_{SKIN}"] == "+0.00"  # identical: interval [0, 0] does not exclude 0
    assert row["test"].startswith("paired bootstrap (12 images")
    assert row["p"] < 0.05


def test_reported_rows_have_no_test_and_are_grouped(tmp_path):
    ours = make_record("a", [0, 0], dataset="celebamask-hq", protocol="native")
    paper = reported_record("SegFace", {"Face": 0.967, "Necklace": 0.634}, 0.8896, 0.8155,
                            {"dataset": "celebamask-hq", "split": "test", "merge": "segface",
                             "protocol": "native", "resolution": 512, "label": "SegFace Swin-B @512"},
                            taxonomy="celebamask-hq")
    board = build_leaderboard([paper, ours], reference="SegFace Swin-B", n_resamples=50)
    group = board.groups[0]
    assert [r["source"] for r in group.table.rows] == ["ours", "reported"]
    assert group.delta.rows[0]["test"] == "none (no per-image stats)"
    assert group.delta.rows[0][f"d_{SKIN}"] == "+3.30"


def test_run_leaderboard_writes_files(tmp_path):
    save_record(make_record("a", [0, 0]), tmp_path / "runs" / "a")
    save_record(make_record("b", [50, 50]), tmp_path / "runs" / "b")
    save_record(make_record("c", [0, 0], protocol="native"), tmp_path / "runs" / "c")
    records = collect_records(tmp_path / "runs")
    assert len(records) == 3 and records[0].per_image.names == ("img0", "img1")
    board = run_leaderboard(tmp_path / "runs", tmp_path / "out", reference="a @64", show=False)
    assert len(board) == 2
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "leaderboard.md" in files
    assert sum(f.startswith("leaderboard-") and f.endswith(".tex") for f in files) == 2
    assert sum(f.startswith("delta-") for f in files) == 3  # one group with a reference, 3 formats
    text = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "2 protocol group(s)" in text and "\\toprule" not in text
    with pytest.raises(FileNotFoundError):
        collect_records(tmp_path / "missing")
    assert not math.isnan(records[0].mean_f1)


def test_bins_from_a_frequency_report_fill_f1_at_bin():
    rec = make_record("b", [50, 50])
    assert rec.f1_by_bin is None
    bins = {"rare": ["neck_l", "background"], "common": ["ear_r"], "frequent": ["skin", "neck"]}
    board = build_leaderboard([rec], bins={"synthface-lt": bins})
    row = board.groups[0].table.rows[0]
    assert row["bin_rare"] == pytest.approx(2 / 3)  # background is not a foreground class: left out
    assert row["bin_common"] == pytest.approx(1.0)
    assert row["bin_frequent"] == pytest.approx((1.0 + 0.8) / 2)
    assert any("presence bins" in n for n in board.groups[0].notes)
    assert "F1@rare" in [c.header for c in board.groups[0].table.columns]
    other = build_leaderboard([rec], bins={"celebamask-hq": bins})  # bins of another dataset: not used
    assert "F1@rare" not in [c.header for c in other.groups[0].table.columns]


def test_mixed_mode_keeps_one_table_but_marks_the_differences():
    a = make_record("a", [0, 0])
    c = make_record("c", [0, 0], protocol="native")
    other_split = make_record("d", [0, 0], split="val")
    board = build_leaderboard([a, c, other_split], mixed=True)
    assert [len(g.records) for g in board.groups] == [2, 1]  # splits still never mix
    group = board.groups[0]
    assert group.protocol["protocol"] == "mixed" and "mixed scoring" in group.table.title
    headers = [col.header for col in group.table.columns]
    assert "Protocol" in headers and "Merge" not in headers  # only what differs is shown
    assert [r["protocol"] for r in group.table.rows] == ["input", "native"]
    assert "Not strictly comparable: rows differ in protocol (input, native) (see those columns)." in group.notes
    assert "Protocol" not in [col.header for col in build_leaderboard([a, c]).groups[0].table.columns]


def test_record_taxonomy_gives_the_columns_display_names_and_no_merge_warning(tmp_path):
    """A folder dataset's record: its own display names (never CelebAMask-HQ's by similar name) and
    merge "n/a" without a warning, also after a save/load in a process that never saw the dataset."""
    from lt_faceparse.records import load_record
    from lt_faceparse.custom_taxonomy import taxonomy_from_names

    tax = taxonomy_from_names("folder:lb-own", ["background", "skin", "hair", "mouth"],
                              display_names=[None, "Skin", "Hair", "Mouth (whole)"])
    record = build_record(np.diag([5, 3, 2, 4]).astype(np.int64), tax,
                          {"model": "m", "dataset": "folder", "data_format": "folder", "split": "test",
                           "merge": None, "protocol": "input"}, num_images=1)
    path = save_record(record, tmp_path / "rec")
    for rec in (record, load_record(path)):
        group = build_leaderboard([rec]).groups[0]
        headers = [c.header for c in group.table.columns]
        assert [h for h in headers if h in ("Skin", "Hair", "Mouth (whole)", "I-Mouth", "Face")] == \
            ["Skin", "Hair", "Mouth (whole)"]
        assert "Head F1" not in headers  # no accessory classes: the head mean would repeat the mean F1
        assert group.protocol["merge"] == "n/a" and "merge n/a" in group.table.title
        assert not any("Warning" in n or "do not state" in n for n in group.notes)
        assert group.table.rows[0]["mean_f1"] == pytest.approx(1.0)


def test_old_record_without_definition_prints_its_class_names():
    from lt_faceparse.custom_taxonomy import taxonomy_from_names

    tax = taxonomy_from_names("three-part", ["background", "skin", "hair"])
    record = build_record(np.diag([5, 3, 2]).astype(np.int64), tax,
                          {"model": "m", "dataset": "own", "split": "test", "merge": None, "protocol": "input"},
                          num_images=1)
    record.taxonomy_definition = None  # as written before records held their taxonomy
    group = build_leaderboard([record]).groups[0]
    headers = [c.header for c in group.table.columns]
    assert "skin" in headers and "hair" in headers and "Face" not in headers and "background" not in headers
    # "own" is not a data format: whether a merge order applies cannot be told, so it is flagged
    assert group.protocol["merge"] == "unknown" and any("do not state ['merge']" in n for n in group.notes)


def test_delta_view_without_common_images_says_so():
    a = make_record("a", [0] * 4)
    b = make_record("b", [50] * 5)
    row = build_leaderboard([a, b], reference="a @64", n_resamples=20).groups[0].delta.rows[0]
    assert row["test"] == "none (not scored on the same images)"
    assert row["d_mean"] == f"{100 * (b.mean_f1 - a.mean_f1):+.2f}"


def test_delta_view_lets_unexpected_errors_through(monkeypatch):
    import lt_faceparse.reporting.delta as delta

    def broken(*args, **kwargs):
        raise TypeError("a bug in the test, not a fact about the data")

    monkeypatch.setattr(delta, "paired_bootstrap", broken)
    with pytest.raises(TypeError, match="a bug in the test"):
        build_leaderboard([make_record("a", [0] * 3), make_record("b", [5] * 3)], reference="a @64")


