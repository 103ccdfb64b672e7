"""``freq``'s one-pass counting: exact against an independent numpy count on real-format trees (every
preset and split), the label caches it fills, and a two-shard run merged back to one run's report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lt_faceparse.analysis.frequency import compute_class_frequencies, frequency_report
from lt_faceparse.cli import main
from lt_faceparse.data.celebamask_layout import MERGE_PRESETS, split_indices
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import get_taxonomy

N = 24
PRESETS = ["segface", "official", "zll"]


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """SynthFace-LT written in each real layout (CelebAMask-HQ with images twice the mask size);
    CelebAMask-HQ gets a 16-bit mask (decoded through numpy's conversion) and a palette one."""
    from lt_faceparse.data.synthetic import generate_synthface

    base = tmp_path_factory.mktemp("freq_trees")
    out = {fmt: generate_synthface(base / fmt, fmt=fmt, num_images=N, size=40, seed=5, num_workers=0,
                                   image_scale=2 if fmt == "celebamask-hq" else 1)
           for fmt in ("celebamask-hq", "lapa", "helen", "folder")}
    sixteen, palette = sorted((out["celebamask-hq"] / "CelebAMask-HQ-mask-anno").rglob("*_hair.png"))[:2]
    on = _part_mask(sixteen)
    Image.fromarray(on.astype(np.uint16) * 300).save(sixteen)
    on = _part_mask(palette)
    indexed = Image.frombytes("P", (on.shape[1], on.shape[0]), (on.astype(np.uint8) * 3).tobytes())
    indexed.putpalette([0, 0, 0] * 256)  # every index black: index > 0 is what marks the part
    indexed.save(palette)
    assert Image.open(sixteen).mode == "I;16" and Image.open(palette).mode == "P"
    return out


# ---- the independent count: Pillow + numpy only, written apart from the library --------------------

def _part_mask(path: Path) -> np.ndarray:
    arr = np.array(Image.open(path))
    return (arr.reshape(arr.shape[0], arr.shape[1], -1)[..., :3] != 0).any(axis=2)


def _celeba_labels(root: Path, split: str, preset: str) -> list[np.ndarray]:
    ids = {name: i for i, name in enumerate(get_taxonomy("celebamask-hq").names)}
    files: dict[int, dict[str, Path]] = {}
    for f in (root / "CelebAMask-HQ-mask-anno").rglob("*.png"):
        idx, part = re.match(r"(\d+)_(\w+)\.png", f.name).groups()
        files.setdefault(int(idx), {})[part] = f
    splits = split_indices(root)
    labels = []
    for idx in (sorted(i for s in splits.values() for i in s) if split == "all" else splits[split]):
        parts = files[idx]
        label = np.zeros(_part_mask(next(iter(parts.values()))).shape, dtype=np.int64)
        for part in MERGE_PRESETS[preset]:
            if part in parts:
                label[_part_mask(parts[part])] = ids[part]
        labels.append(label)
    return labels


def _stored_labels(root: Path, split: str) -> list[np.ndarray]:
    return [np.array(Image.open(p)).astype(np.int64) for p in sorted(root.glob(f"{split}/labels/*.png"))]


def _independent(labels: list[np.ndarray], k: int) -> dict[str, list]:
    pixels, images, area = [0] * k, [0] * k, [0.0] * k
    for label in labels:
        counts = [int((label == c).sum()) for c in range(k)]
        valid = sum(counts)
        for c in range(k):
            pixels[c] += counts[c]
            images[c] += counts[c] > 0
            area[c] += counts[c] / valid if valid else 0.0
    return {"pixel_count": pixels, "images_with_class": images,
            "mean_area_when_present": [a / n if n else float("nan") for a, n in zip(area, images)]}


def _check(frame: pd.DataFrame, want: dict[str, list], num_images: int) -> None:
    assert frame["pixel_count"].tolist() == want["pixel_count"]
    assert frame["images_with_class"].tolist() == want["images_with_class"]
    np.testing.assert_allclose(frame["presence_prob"], np.array(want["images_with_class"]) / num_images, rtol=0)
    np.testing.assert_allclose(frame["mean_area_when_present"], want["mean_area_when_present"], rtol=1e-12)


@pytest.mark.parametrize("split", ["train", "val", "test", "all"])
def test_celebamask_every_preset_matches_independent_count(trees, tmp_path, split):
    root = trees["celebamask-hq"]
    tables = frequency_report("celebamask-hq", root, split, tmp_path / "out", merges=PRESETS, num_workers=2)
    for preset in PRESETS:
        labels = _celeba_labels(root, split, preset)
        assert tables[preset].summary["num_images"] == len(labels) > 0
        _check(tables[preset].frame, _independent(labels, 19), len(labels))
        assert tables[preset].summary["merge"] == preset and tables[preset].summary["split"] == split


@pytest.mark.parametrize("fmt", ["lapa", "folder"])  # (Helen's loader crops its labels around the face)
def test_stored_label_formats_match_independent_count(trees, tmp_path, fmt):
    root = trees[fmt]
    for split in ("train", "test"):
        table = frequency_report(fmt, root, split, tmp_path / split, num_workers=2)["segface"]
        labels = _stored_labels(root, split)
        assert table.summary["num_images"] == len(labels)
        _check(table.frame, _independent(labels, table.taxonomy.num_classes), len(labels))


def test_one_pass_equals_the_dataset_path_and_fills_the_caches(trees, tmp_path):
    """The CelebAMask-HQ pass gives the tables (all columns, image by image presence) that the
    dataset objects' labels give, and leaves every preset's cache complete and equal to them."""
    from lt_faceparse.analysis.frequency import _open_splits

    root = trees["celebamask-hq"]
    tables = frequency_report("celebamask-hq", root, "all", tmp_path / "out", merges=PRESETS, num_workers=0)
    for preset in PRESETS:
        datasets = _open_splits("celebamask-hq", root, "all", preset)
        for ds in datasets:
            assert ds.cache_status().state == "complete"
            for i in range(len(ds)):
                np.testing.assert_array_equal(ds.read_label(i), ds.build_label(i))
        uncached = [type(d)(root, d.split, merge=preset, cache_dir=False) for d in datasets]
        by_dataset = compute_class_frequencies(uncached)
        pd.testing.assert_frame_equal(tables[preset].frame, by_dataset.frame)
        np.testing.assert_array_equal(tables[preset].image_presence, by_dataset.image_presence)


# ---- shards ---------------------------------------------------------------------------------------

def _without_created(path: Path) -> dict:
    summary = json.loads(path.read_text())
    summary.pop("created")
    return summary


def test_two_shards_merge_to_one_run(trees, tmp_path, capsys):
    root = str(trees["celebamask-hq"])
    common = ["freq", "--dataset", "celebamask-hq", "--root", root, "--split", "all", "--merge", *PRESETS,
              "--workers", "2", "--rare-below", "0.2"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    for i in (1, 0):
        assert main([*common, "--shard", f"{i}/2", "--out", str(tmp_path / "shards")]) == 0
    assert "freq-merge" in capsys.readouterr().out
    assert main(["freq-merge", str(tmp_path / "shards"), "--out", str(tmp_path / "merged")]) == 0
    for preset in PRESETS:
        one, merged = tmp_path / "one" / preset, tmp_path / "merged" / preset
        assert (one / "class_frequencies.csv").read_bytes() == (merged / "class_frequencies.csv").read_bytes()
        assert _without_created(one / "summary.json") == _without_created(merged / "summary.json")
        assert json.loads((merged / "summary.json").read_text())["thresholds"]["rare_below"] == 0.2
    assert (tmp_path / "merged" / "merge_comparison.csv").read_bytes() == \
        (tmp_path / "one" / "merge_comparison.csv").read_bytes()


def test_merge_refuses_missing_repeated_or_foreign_shards(trees, tmp_path):
    from lt_faceparse.analysis.frequency import frequency_shard, merge_shards

    root = trees["celebamask-hq"]
    first = frequency_shard("celebamask-hq", root, "all", tmp_path / "a", (0, 3))
    with pytest.raises(DataError, match=r"shards \[1, 2\] of 3 are missing"):
        merge_shards([first], tmp_path / "out")
    with pytest.raises(DataError, match="given twice"):
        merge_shards([first, first], tmp_path / "out")
    other = frequency_shard("celebamask-hq", root, "train", tmp_path / "b", (1, 3))
    with pytest.raises(DataError, match="other settings"):
        merge_shards([first, other], tmp_path / "out")
    (tmp_path / "c").mkdir()
    bad = tmp_path / "c" / "shard-0-of-1.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a freq shard file"):
        merge_shards([bad], tmp_path / "out")


def test_shard_option_is_checked(trees, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["freq", "--dataset", "celebamask-hq", "--root", str(trees["celebamask-hq"]), "--split", "all",
              "--shard", "2/2", "--out", str(tmp_path)])
    assert "0 <= I < N" in capsys.readouterr().err


# ---- the report's figures --------------------------------------------------------------------------

@pytest.mark.parametrize("merges, workers, expected", [
    (["segface"], 2, [("report", ("png",)), ("report", ("pdf",))]),  # idle processes: one format each
    (["segface"], 0, [("report", ("png", "pdf"))]),
    (PRESETS, 2, [("comparison", ("png", "pdf"))] + [("report", ("png", "pdf"))] * 3),  # costliest first
])
def test_figure_jobs(tmp_path, merges, workers, expected):
    from lt_faceparse.analysis.frequency import _figure_jobs

    figures = ([("comparison", None, tmp_path / "c")] if len(merges) > 1 else []) + \
        [("report", None, tmp_path / m) for m in merges]
    assert [(job[0], job[4]) for job in _figure_jobs(figures, False, workers)] == expected


def test_figures_drawn_format_by_format_in_processes_equal_one_drawing(trees, tmp_path):
    """One preset with two processes draws its PNG and its PDF in separate processes; the files are
    byte for byte those of one process drawing both."""
    root = trees["celebamask-hq"]
    for workers in (0, 2):
        frequency_report("celebamask-hq", root, "all", tmp_path / str(workers), num_workers=workers)
    for name in ("class_frequencies.png", "class_frequencies.pdf", "class_frequencies.csv"):
        assert (tmp_path / "0" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()
