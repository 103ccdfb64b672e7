"""CelebAMask-HQ: merge presets on hand-made overlapping masks, split rule, mask formats."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HAND_MASKS, _mask, make_celeba_tree

from lt_faceparse.data import build_dataset
from lt_faceparse.data.celebamask_layout import (
    MERGE_PRESETS,
    celeba_split_of,
    mask_path,
    resolve_merge,
    split_indices,
)

# Expected label maps of HAND_MASKS, worked out by hand from the paint orders in datasets.md
# (ids: 1 neck, 2 skin, 3 cloth, 4 l_ear, 8 l_eye, 10 nose, 11 mouth, 12 l_lip, 13 u_lip, 14 hair,
# 15 eye_g, 16 hat, 17 ear_r, 18 neck_l).
EXPECTED = {
    # skin paints over neck; glasses over the eye; earring over hair; necklace on top; hair over cloth
    "segface": [[16, 14, 14, 17], [15, 15, 8, 4], [10, 10, 13, 13], [2, 18, 18, 14]],
    # eye over glasses; lower lip over upper lip; neck over necklace; cloth over hair and necklace
    "official": [[16, 14, 14, 17], [15, 8, 8, 4], [10, 10, 13, 12], [1, 1, 3, 3]],
    # hair over earring; glasses over eye; necklace over neck, cloth over necklace, hair over cloth
    "zll": [[16, 14, 14, 14], [15, 15, 8, 4], [10, 10, 13, 12], [1, 18, 3, 14]],
}


@pytest.fixture()
def hand_tree(tmp_path):
    return make_celeba_tree(tmp_path / "celeba", {0: 1})


@pytest.mark.parametrize("preset", ["segface", "official", "zll"])
def test_merge_presets_pixel_by_pixel(hand_tree, preset):
    ds = build_dataset("celebamask-hq", hand_tree, "train", merge=preset, resolution=None, cache_dir=False)
    assert ds.merge == preset
    np.testing.assert_array_equal(ds.read_label(0), np.array(EXPECTED[preset], dtype=np.uint8))
    sample = ds[0]
    assert sample.orig_size == (4, 4)  # label resolution = mask resolution, not the 8 px image
    assert tuple(sample.image.shape) == (3, 4, 4)
    np.testing.assert_array_equal(sample.label.numpy(), np.array(EXPECTED[preset]))


def test_presets_differ_and_match_docs():
    assert MERGE_PRESETS["segface"][0] == "neck" and MERGE_PRESETS["segface"][-1] == "neck_l"
    assert MERGE_PRESETS["official"][-2:] == ("neck", "cloth")
    assert MERGE_PRESETS["zll"][-2:] == ("hair", "hat")
    for order in MERGE_PRESETS.values():
        assert len(order) == 18 and len(set(order)) == 18


def test_custom_order(hand_tree):
    ds = build_dataset("celebamask-hq", hand_tree, "train", merge=["skin", "hair", "l_eye"], resolution=None,
                       cache_dir=False)
    assert ds.merge == "custom:skin,hair,l_eye"
    want = np.full((4, 4), 2, dtype=np.uint8)
    want[0, :] = 14
    want[3, 3] = 14
    want[1, 1:3] = 8
    np.testing.assert_array_equal(ds.read_label(0), want)
    # a preset spelled out as a list is recognised as that preset
    assert resolve_merge(list(MERGE_PRESETS["zll"]))[0] == "zll"
    with pytest.raises(ValueError):
        resolve_merge(["skin", "beard"])
    with pytest.raises(ValueError):
        resolve_merge("nonsense")


def test_rgb_and_non_255_masks_count_as_part(tmp_path):
    masks = {k: _mask(v) for k, v in HAND_MASKS.items()}
    hair = np.zeros((4, 4, 3), dtype=np.uint8)
    hair[0, :, 2] = 255  # blue-only RGB mask
    hair[3, 3, 0] = 1  # faint red pixel: still non-zero
    masks["hair"] = hair
    masks["hat"] = (masks["hat"] > 0).astype(np.uint8)  # values 0/1 instead of 0/255
    root = make_celeba_tree(tmp_path / "c", {0: 1}, masks={0: masks})
    ds = build_dataset("celebamask-hq", root, "train", resolution=None, cache_dir=False)
    np.testing.assert_array_equal(ds.read_label(0), np.array(EXPECTED["segface"], dtype=np.uint8))


def test_split_rule_at_celeba_boundaries():
    assert celeba_split_of(1) == "train"
    assert celeba_split_of(162770) == "train"
    assert celeba_split_of(162771) == "val"
    assert celeba_split_of(182637) == "val"
    assert celeba_split_of(182638) == "test"
    assert celeba_split_of(202599) == "test"
    with pytest.raises(ValueError):
        celeba_split_of(0)


def test_split_from_mapping_rule_and_partition_file(tmp_path):
    numbers = {0: 162770, 1: 162771, 2: 182637, 3: 182638, 4: 1, 2001: 202599}
    root = make_celeba_tree(tmp_path / "rule", numbers)
    assert split_indices(root) == {"train": [0, 4], "val": [1, 2], "test": [3, 2001]}
    # mask folder k = idx // 2000
    assert mask_path(root, 2001, "skin").parent.name == "1"
    ds = build_dataset("celebamask-hq", root, "test", resolution=None, cache_dir=False)
    assert ds.names == ["3", "2001"]
    np.testing.assert_array_equal(ds.read_label(1), np.array(EXPECTED["segface"], dtype=np.uint8))

    # list_eval_partition.txt wins over the rule when present
    part = {162770: 2, 162771: 0, 182637: 0, 182638: 1, 1: 0, 202599: 2}
    root2 = make_celeba_tree(tmp_path / "file", numbers, partition=part)
    assert split_indices(root2) == {"train": [1, 2, 4], "val": [3], "test": [0, 2001]}
    all_ds = build_dataset("celebamask-hq", root2, "all", resolution=None, cache_dir=False)
    assert all_ds.names == ["0", "1", "2", "3", "4", "2001"]


@pytest.mark.parametrize("width", [24, 21])  # 8 pixels a word, and a width that is not
def test_painting_only_a_masks_rows_gives_the_same_labels(width):
    from lt_faceparse.data.celebamask_layout import mask_rows, merge_part_masks

    rng = np.random.default_rng(width)
    masks = {"skin": rng.random((16, width)) > 0.3, "hair": np.zeros((16, width), bool),
             "l_eye": np.zeros((16, width), bool), "empty": np.zeros((16, width), bool)}
    masks["hair"][:5, 3] = True
    masks["l_eye"][9, 0] = masks["l_eye"][11, width - 1] = True
    rows = mask_rows(masks)
    assert rows["hair"] == (0, 5) and rows["l_eye"] == (9, 12) and rows["empty"] == (0, 0)
    for preset in MERGE_PRESETS.values():
        np.testing.assert_array_equal(merge_part_masks(masks, preset, rows=rows), merge_part_masks(masks, preset))
