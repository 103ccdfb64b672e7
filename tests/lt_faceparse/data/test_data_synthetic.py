"""SynthFace-LT: round trips through every loader, determinism, presence table, overlaps, caching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SYNTH_N, SYNTH_SEED

from lt_faceparse.data import build_dataset
from lt_faceparse.data.celebamask_layout import MERGE_PRESETS, merge_part_masks, read_mapping, split_indices
from lt_faceparse.data.synthetic import (
    COMPLETE_MARKER,
    DEFAULT_PRESENCE,
    draw_example,
    ensure_synthface,
    generate_synthface,
    merged_label,
    sample_presence,
)
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import get_taxonomy


def _index(name: str) -> int:
    return int(name)


@pytest.mark.parametrize("preset", ["segface", "official", "zll"])
def test_celebamask_roundtrip_every_preset(synth_sets, preset):
    root = synth_sets["celebamask-hq"]
    ds = build_dataset("celebamask-hq", root, "all", merge=preset, resolution=None, cache_dir=False)
    assert len(ds) == SYNTH_N
    for i in range(len(ds)):
        hw = ds.read_label(i).shape
        ex = draw_example(SYNTH_SEED, _index(ds.names[i]), hw, pose="celebamask-hq")
        want = merge_part_masks(ex.parts, MERGE_PRESETS[preset], hw)
        np.testing.assert_array_equal(ds.read_label(i), want)
        assert ds.read_image(i).shape[:2] == (2 * hw[0], 2 * hw[1])  # images at twice the mask size
        assert ds[i].orig_size == hw


def test_celebamask_mapping_and_partition_consistent(synth_sets, tmp_path):
    root = synth_sets["celebamask-hq"]
    splits = split_indices(root)
    assert {k: len(v) for k, v in splits.items()} == {"train": 8, "val": 1, "test": 1}
    # the partition file agrees with CelebA's index rule for every mapped file
    numbers = read_mapping(root / "CelebA-HQ-to-CelebA-mapping.txt")
    assert len(set(numbers.values())) == SYNTH_N
    lines = (root / "list_eval_partition.txt").read_text().split("\n")
    assert len([ln for ln in lines if ln]) == SYNTH_N
    from lt_faceparse.data.celebamask_layout import celeba_split_of

    by_rule = {s: sorted(i for i, n in numbers.items() if celeba_split_of(n) == s) for s in splits}
    assert by_rule == splits


def test_presets_give_different_maps_on_overlapping_parts(tmp_path):
    # force the overlapping classes so every image exercises them
    forced = {"neck_l": 1.0, "eye_g": 1.0, "hair": 1.0, "cloth": 1.0, "neck": 1.0, "l_eye": 1.0, "r_eye": 1.0,
              "mouth": 1.0}
    root = generate_synthface(tmp_path / "forced", num_images=4, size=64, seed=1, presence=forced, num_workers=0)
    tax = get_taxonomy("celebamask-hq")
    for i in range(4):
        ds = {p: build_dataset("celebamask-hq", root, "all", merge=p, resolution=None, cache_dir=False)
              for p in ("segface", "official")}
        seg, off = ds["segface"].read_label(i), ds["official"].read_label(i)
        # necklace survives under segface, the neck paints over it under official
        assert (seg == tax.id_of("neck_l")).any()
        assert (seg != off).any()
        assert (off == tax.id_of("neck_l")).sum() < (seg == tax.id_of("neck_l")).sum()
        # the overlaps are where the real ones are: nose, brows, lips and mouth survive every preset
        for name in ("nose", "l_brow", "r_brow", "u_lip", "l_lip", "mouth"):
            assert (seg == tax.id_of(name)).any() == (off == tax.id_of(name)).any(), name


@pytest.mark.parametrize("fmt", ["lapa", "helen", "folder"])
def test_other_formats_roundtrip(synth_sets, fmt):
    root = synth_sets[fmt]
    tax_name = {"lapa": "lapa", "helen": "helen", "folder": "celebamask-hq"}[fmt]
    total = 0
    for split in ("train", "val", "test"):
        ds = build_dataset(fmt, root, split, resolution=None)
        assert ds.taxonomy.name == tax_name
        total += len(ds)
        for i in range(len(ds)):
            full = ds.read_full_label(i) if fmt == "helen" else ds.read_label(i)
            ex = draw_example(SYNTH_SEED, _index(ds.names[i]), full.shape, pose=fmt)
            np.testing.assert_array_equal(full, merged_label(ex.parts, full.shape, tax_name))
            if fmt == "lapa":
                np.testing.assert_allclose(ds.read_landmarks(i), ex.landmarks106, atol=0.006)
            if fmt == "helen":  # file holds 2x coordinates; crop shifts them
                left, top, right, bottom = ds.crop(i, full.shape)
                np.testing.assert_allclose(ds.read_landmarks(i) + [left, top], ex.landmarks68, atol=0.006)
                np.testing.assert_array_equal(ds.read_label(i), full[top:bottom, left:right])
    assert total == SYNTH_N


def test_eleven_class_mapping():
    parts = {p: np.zeros((1, 18), dtype=bool) for p in DEFAULT_PRESENCE}
    order = list(DEFAULT_PRESENCE)
    for j, p in enumerate(order):
        parts[p][0, j] = True
    lab = merged_label(parts, (1, 18), "lapa")
    tax = get_taxonomy("lapa")
    got = {p: tax.names[lab[0, j]] for j, p in enumerate(order)}
    assert got["l_ear"] == got["r_ear"] == "skin"
    assert got["neck"] == got["cloth"] == got["hat"] == got["ear_r"] == got["neck_l"] == "background"
    assert got["eye_g"] == "background"  # transparent: nothing else under it in this test
    assert got["mouth"] == "mouth" and got["l_eye"] == "l_eye" and got["hair"] == "hair"


def test_landmarks_sit_on_the_drawn_parts(synth_sets):
    ds = build_dataset("lapa", synth_sets["lapa"], "train", resolution=None)
    tax = ds.taxonomy
    checked = 0
    for i in range(len(ds)):
        label, lm = ds.read_label(i), ds.read_landmarks(i)
        for point, cls in ((74, "r_eye"), (83, "l_eye"), (54, "nose")):  # image-left eye = subject's right
            if (label == tax.id_of(cls)).sum() > 4:
                x, y = np.round(lm[point]).astype(int)
                assert tax.names[label[y, x]] == cls
                checked += 1
    assert checked >= 10
    ds68 = build_dataset("helen", synth_sets["helen"], "train", resolution=None)
    lab, lm = ds68.read_label(0), ds68.read_landmarks(0)
    assert lm[36, 0] < lm[45, 0]  # iBUG order: point 36 on the image-left eye
    x, y = np.round(lm[30]).astype(int)  # nose tip
    assert ds68.taxonomy.names[lab[y, x]] == "nose"


def test_same_seed_same_bytes_serial_and_parallel(tmp_path):
    a = generate_synthface(tmp_path / "a", fmt="lapa", num_images=8, size=48, seed=3, num_workers=0)
    b = generate_synthface(tmp_path / "b", fmt="lapa", num_images=8, size=48, seed=3, num_workers=2)
    c = generate_synthface(tmp_path / "c", fmt="lapa", num_images=8, size=48, seed=4, num_workers=0)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "train/images").is_dir()
    # another seed draws other faces (and another split assignment)
    label_a = next(a.glob("*/labels/000001.png")).read_bytes()
    label_c = next(c.glob("*/labels/000001.png")).read_bytes()
    assert label_a != label_c


def test_presence_table_and_long_tail():
    p = DEFAULT_PRESENCE
    assert set(p) == set(get_taxonomy("celebamask-hq").names) - {"background"}
    for head in ("skin", "nose", "hair", "l_eye", "r_eye", "l_brow", "r_brow", "u_lip", "l_lip"):
        assert p[head] >= 0.95
    assert 0.2 <= p["ear_r"] <= 0.3 and 0.05 <= p["eye_g"] <= 0.1 and 0.05 <= p["hat"] <= 0.1
    assert p["neck_l"] == pytest.approx(0.05)
    assert 0.3 < p["mouth"] < 0.8 and 0.3 < p["l_ear"] < 0.9 and 0.3 < p["cloth"] < 0.9
    # sampled frequencies follow the table (4 standard errors over 4,000 draws)
    rng = np.random.default_rng(0)
    n = 4000
    counts = dict.fromkeys(p, 0)
    for _ in range(n):
        for k, v in sample_presence(rng, p).items():
            counts[k] += v
    for k, prob in p.items():
        assert abs(counts[k] / n - prob) <= 4 * np.sqrt(prob * (1 - prob) / n) + 1e-9, k


def test_forced_presence_and_presence_json(tmp_path):
    forced = {"hat": 1.0, "eye_g": 0.0, "neck_l": 1.0, "mouth": 0.0}
    root = generate_synthface(tmp_path / "f", num_images=5, size=48, seed=2, presence=forced, num_workers=0)
    info = json.loads((root / "presence.json").read_text())
    assert info["presence"]["hat"] == 1.0 and info["presence"]["ear_r"] == DEFAULT_PRESENCE["ear_r"]
    assert info["seed"] == 2 and info["format"] == "celebamask-hq" and info["image_scale"] == 1
    from PIL import Image

    assert Image.open(root / "CelebA-HQ-img" / "0.jpg").size == (48, 48)  # default: images at mask size
    with pytest.raises(ValueError, match="image_scale"):
        generate_synthface(tmp_path / "h", fmt="lapa", num_images=2, size=48, image_scale=2)
    masks = [p.name for p in (root / "CelebAMask-HQ-mask-anno" / "0").iterdir()]
    for i in range(5):
        assert f"{i:05d}_hat.png" in masks and f"{i:05d}_neck_l.png" in masks
        assert f"{i:05d}_eye_g.png" not in masks and f"{i:05d}_mouth.png" not in masks
    with pytest.raises(KeyError):
        generate_synthface(tmp_path / "g", num_images=2, size=48, presence={"beard": 0.5})
    with pytest.raises(DataError, match="not empty"):
        generate_synthface(root, num_images=2, size=48)


def test_accessories_are_small_relative_to_the_face(tmp_path):
    forced = {"ear_r": 1.0, "neck_l": 1.0}
    tax = get_taxonomy("celebamask-hq")
    for i in range(4):
        ex = draw_example(5, i, (96, 96), presence=forced)
        face = ex.parts["skin"].sum()
        assert 0 < ex.parts["ear_r"].sum() < 0.08 * face
        assert 0 < ex.parts["neck_l"].sum() < 0.15 * face
        lab = merged_label(ex.parts, (96, 96))
        assert (lab == tax.id_of("ear_r")).any() and (lab == tax.id_of("neck_l")).any()


def test_ensure_synthface_generates_once(tmp_path):
    kw = dict(fmt="folder", num_images=4, size=48, seed=1, num_workers=0)
    first = ensure_synthface(tmp_path, **kw)
    marker = first / COMPLETE_MARKER
    stamp = marker.stat().st_mtime_ns
    assert ensure_synthface(tmp_path, **kw) == first and marker.stat().st_mtime_ns == stamp  # reused
    other = ensure_synthface(tmp_path, **{**kw, "seed": 2})
    assert other != first and (other / COMPLETE_MARKER).is_file()
    assert ensure_synthface(tmp_path, **{**kw, "presence": {"hat": 1}}) != first  # other presence table
    # an incomplete set (no marker) is regenerated
    marker.unlink()
    (first / "classes.txt").unlink()
    again = ensure_synthface(tmp_path, **kw)
    assert again == first and (first / "classes.txt").is_file() and marker.is_file()
    assert len(build_dataset("folder", first, "train", resolution=None)) + \
        len(build_dataset("folder", first, "val", resolution=None)) + \
        len(build_dataset("folder", first, "test", resolution=None)) == 4
    assert isinstance(first, Path)


@pytest.mark.slow
def test_generation_speed_budget(tmp_path):
    """3,000 images at 256 px in under a minute on 2 cores = 40 ms of CPU per image (both cores busy);
    measured as process CPU time of a serial run so that other load on the machine matters less."""
    import time

    n = 40
    t0 = time.process_time()
    generate_synthface(tmp_path / "speed", num_images=n, size=256, seed=0, num_workers=0)
    per_image = (time.process_time() - t0) / n
    assert per_image < 0.040, f"{per_image * 1e3:.1f} ms CPU per image"


def test_min_stroke_widens_only_the_accessories():
    """min_stroke 0 draws exactly the default example; 6 px keeps every accessory wider than 4 px (it
    survives an erosion of radius 2), which at their natural size most do not."""
    from scipy.ndimage import binary_erosion

    from lt_faceparse.data.synthetic_draw import draw_example

    accessories = {"eye_g": 1.0, "hat": 1.0, "ear_r": 1.0, "neck_l": 1.0}
    survives = {0.0: [], 6.0: []}
    for i in range(6):
        plain = draw_example(0, i, (96, 96), presence=accessories)
        same = draw_example(0, i, (96, 96), presence=accessories, min_stroke=0.0)
        assert np.array_equal(plain.image, same.image)
        wide = draw_example(0, i, (96, 96), presence=accessories, min_stroke=6.0)
        for part in plain.parts:
            if part in ("ear_r", "neck_l", "eye_g", "hat"):
                assert wide.parts[part].sum() >= plain.parts[part].sum()
            else:  # the face is untouched
                assert np.array_equal(wide.parts[part], plain.parts[part]), part
        for stroke, ex in ((0.0, plain), (6.0, wide)):
            survives[stroke] += [binary_erosion(ex.parts[p], iterations=2).any() for p in ("ear_r", "neck_l")]
    assert all(survives[6.0]) and not all(survives[0.0])
