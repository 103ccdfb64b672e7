"""CelebAMask-HQ's on-disk layout, split rule and part-mask merging, without the dataset class.

Everything here needs numpy and Pillow only (no torch), so the class-frequency pass
(:mod:`lt_faceparse.data.label_pass`) starts in a fraction of a second;
:mod:`lt_faceparse.data.celebamask_hq` re-exports these names.

```
ROOT/CelebA-HQ-img/{idx}.jpg                                  1024 x 1024
ROOT/CelebAMask-HQ-mask-anno/{idx // 2000}/{idx:05d}_{part}.png  512 x 512, one file per present part
ROOT/CelebA-HQ-to-CelebA-mapping.txt                          "idx orig_idx orig_file"
ROOT/list_eval_partition.txt                                  optional (CelebA's): "000001.jpg 0"
```
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from lt_faceparse.data.cache import files_fingerprint
from lt_faceparse.data.files import open_image
from lt_faceparse.data.png_decode import png_pixels
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import get_taxonomy

IMAGE_DIR = "CelebA-HQ-img"
MASK_DIR = "CelebAMask-HQ-mask-anno"
MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"
PARTITION_FILE = "list_eval_partition.txt"
IMAGES_PER_MASK_FOLDER = 2000

# Part file suffixes as distributed.
PARTS = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth",
         "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")

MERGE_PRESETS: dict[str, tuple[str, ...]] = {
    # SegFace / FaRL / facer
    "segface": ("neck", "skin", "cloth", "l_ear", "r_ear", "l_brow", "r_brow", "l_eye", "r_eye", "nose",
                "mouth", "l_lip", "u_lip", "hair", "eye_g", "hat", "ear_r", "neck_l"),
    # the dataset authors' preprocessing script
    "official": ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth",
                 "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"),
    # face-parsing.PyTorch (zll)
    "zll": ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r", "nose", "mouth",
            "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat"),
}

# CelebA's own partition (file numbers, 1-based): train <= 162770 < val <= 182637 < test.
CELEBA_TRAIN_LAST = 162770
CELEBA_VAL_LAST = 182637
PUBLISHED_SPLIT_SIZES = {"train": 24183, "val": 2993, "test": 2824}
SPLITS = ("train", "val", "test")
_PARTITION_CODES = {"0": "train", "1": "val", "2": "test"}
_MASK_NAME = re.compile(r"^(\d+)_([a-z_]+)\.png$")


def resolve_merge(merge: str | Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """``(name, paint order)`` of a preset name or a user-given list of part names.

    A user list may name a subset of the parts (the others are never painted); its name is
    ``"custom:" + ",".join(order)``.
    """
    if isinstance(merge, str):
        if merge in MERGE_PRESETS:
            return merge, MERGE_PRESETS[merge]
        if "," in merge:
            return resolve_merge([p.strip() for p in merge.split(",") if p.strip()])
        raise ValueError(f"unknown merge preset {merge!r}; presets: {sorted(MERGE_PRESETS)} or a list of parts")
    order = tuple(merge)
    unknown = [p for p in order if p not in PARTS]
    if unknown or not order or len(set(order)) != len(order):
        raise ValueError(f"bad merge order {list(order)}: parts must be distinct names from {list(PARTS)}")
    for name, preset in MERGE_PRESETS.items():
        if preset == order:
            return name, order
    return "custom:" + ",".join(order), order


def celeba_split_of(file_number: int) -> str:
    """CelebA's partition of a 1-based CelebA file number (``000001.jpg`` -> 1)."""
    if file_number < 1:
        raise ValueError(f"CelebA file numbers start at 1, got {file_number}")
    if file_number <= CELEBA_TRAIN_LAST:
        return "train"
    if file_number <= CELEBA_VAL_LAST:
        return "val"
    return "test"


def read_mapping(path: str | Path) -> dict[int, int]:
    """HQ index -> 1-based CelebA file number from ``CelebA-HQ-to-CelebA-mapping.txt``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "mapping file not found (needed to split CelebAMask-HQ)")
    out: dict[int, int] = {}
    lines = path.read_text().splitlines()
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if not parts or (lineno == 1 and not parts[0].isdigit()):
            continue  # header "idx orig_idx orig_file" or blank line
        try:
            idx = int(parts[0])
            number = int(Path(parts[2]).stem) if len(parts) >= 3 else int(parts[1]) + 1
        except (ValueError, IndexError):
            raise DataError(path, f"line {lineno}: expected 'idx orig_idx orig_file', got {line!r}") from None
        out[idx] = number
    if not out:
        raise DataError(path, "mapping file has no rows")
    return out


def read_partition(path: str | Path) -> dict[int, str]:
    """1-based CelebA file number -> split from ``list_eval_partition.txt`` ("000001.jpg 0")."""
    path = Path(path)
    out: dict[int, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            out[int(Path(parts[0]).stem)] = _PARTITION_CODES[parts[1]]
        except (ValueError, IndexError, KeyError):
            raise DataError(path, f"line {lineno}: expected '<number>.jpg <0|1|2>', got {line!r}") from None
    return out


def split_indices(root: str | Path) -> dict[str, list[int]]:
    """HQ indices of each split (sorted), from the mapping file and the partition file or rule."""
    root = Path(root)
    mapping = read_mapping(root / MAPPING_FILE)
    part_path = root / PARTITION_FILE
    partition = read_partition(part_path) if part_path.is_file() else None
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for idx, number in sorted(mapping.items()):
        if partition is not None:
            if number not in partition:
                raise DataError(part_path, f"CelebA file {number:06d}.jpg (HQ image {idx}) is not listed")
            out[partition[number]].append(idx)
        else:
            out[celeba_split_of(number)].append(idx)
    return out


def mask_path(root: str | Path, idx: int, part: str) -> Path:
    return Path(root) / MASK_DIR / str(idx // IMAGES_PER_MASK_FOLDER) / f"{idx:05d}_{part}.png"


def check_root(root: str | Path) -> Path:
    """``root`` as a Path, if it holds CelebAMask-HQ's image folder."""
    root = Path(root)
    if not (root / IMAGE_DIR).is_dir():
        raise DataError(root / IMAGE_DIR, "image folder not found (is this a CelebAMask-HQ root?)")
    return root


def mask_files_fingerprint(root: str | Path, idx: int, paths: Iterable[str | Path]) -> str:
    """The label cache's fingerprint of image ``idx``'s mask files (names, sizes, modification times)."""
    paths = list(paths)
    if not paths:
        raise DataError(mask_path(root, idx, "*").parent, f"no mask files for image {idx}")
    try:
        return files_fingerprint(paths)
    except FileNotFoundError as err:
        raise DataError(err.filename, "mask file disappeared since the tree was scanned") from None


def scan_masks(root: str | Path) -> dict[int, dict[str, str]]:
    """Every mask file of the tree: HQ index -> {part: path}. Unknown part names are skipped
    (``check_dataset`` reports them). Paths are strings: 30,000 images have about 370,000 mask
    files, and a ``Path`` each would cost about 3 s (8 us each on our test machine)."""
    mask_root = Path(root) / MASK_DIR
    if not mask_root.is_dir():
        raise DataError(mask_root, "mask folder not found")
    found: dict[int, dict[str, str]] = {}
    for sub in sorted(os.scandir(mask_root), key=lambda e: e.name):
        if not sub.is_dir() or not sub.name.isdigit():
            continue
        for entry in os.scandir(sub.path):
            m = _MASK_NAME.match(entry.name)
            if m and m.group(2) in PARTS:
                found.setdefault(int(m.group(1)), {})[m.group(2)] = entry.path
    return found


# bytes per pixel of the modes whose raw bytes are the pixel values (read without numpy's copy)
_BYTE_MODES = {"L": 1, "P": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def _mask_pixels(path: str | Path) -> np.ndarray:
    """The mask file's pixels, H x W or H x W x channels: a plain 8-bit PNG decoded without
    ``Image.open`` (:func:`~lt_faceparse.data.png_decode.png_pixels`), anything else through Pillow."""
    plain = png_pixels(path)
    if plain is not None:
        return plain[1]
    img = open_image(path)
    if img.mode not in _BYTE_MODES:  # 1-bit, 16-bit, float: numpy's conversion
        return np.asarray(img)
    channels = _BYTE_MODES[img.mode]  # one copy of the decoded bytes (np.asarray makes two)
    shape = (img.height, img.width) if channels == 1 else (img.height, img.width, channels)
    return np.frombuffer(img.tobytes(), dtype=np.uint8).reshape(shape)


def read_part_mask(path: str | Path) -> np.ndarray:
    """H x W bool: any non-zero pixel (gray, RGB or palette index) belongs to the part."""
    arr = _mask_pixels(path)
    if arr.ndim == 3:
        arr = np.maximum(np.maximum(arr[..., 0], arr[..., 1]), arr[..., 2]) if arr.shape[2] >= 3 else arr[..., 0]
    return arr > 0


def read_parts(root: str | Path, idx: int, files: Mapping[str, str | Path],
               parts: Iterable[str]) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
    """Decode, once each, the masks of image ``idx`` among ``parts`` (``files``: {part: path} of the
    masks present). Returns the masks and their common size (that of any mask file when none of
    ``parts`` is present); a mask of another size than the first is an error naming its file."""
    if not files:
        raise DataError(mask_path(root, idx, "*").parent, f"no mask files for image {idx}")
    masks: dict[str, np.ndarray] = {}
    shape = None
    for part in parts:
        if part not in files or part in masks:
            continue
        m = read_part_mask(files[part])
        if shape is None:
            shape = m.shape
        elif m.shape != shape:
            raise DataError(files[part], f"mask size {m.shape[1]}x{m.shape[0]} differs from the other "
                                         f"masks of this image ({shape[1]}x{shape[0]})")
        masks[part] = m
    if shape is None:  # only parts outside ``parts`` exist: size from any of them
        shape = read_part_mask(next(iter(files.values()))).shape
    return masks, shape


def merge_part_masks(masks: dict[str, np.ndarray], order: Iterable[str],
                     shape: tuple[int, int] | None = None,
                     rows: Mapping[str, tuple[int, int]] | None = None) -> np.ndarray:
    """Paint part masks in ``order`` (later overwrites earlier) into SegFace ids (uint8 H x W).
    ``rows``: each mask's rows holding its pixels (:func:`mask_rows`), so that it is painted there
    only (worth its cost when the same masks are painted in several orders)."""
    tax = get_taxonomy("celebamask-hq")
    if shape is None:
        if not masks:
            raise ValueError("merge_part_masks: no masks and no shape")
        shape = next(iter(masks.values())).shape
    label = np.zeros(shape, dtype=np.uint8)
    for part in order:
        m = masks.get(part)
        if m is not None:
            top, bottom = rows[part] if rows is not None else (0, shape[0])
            np.copyto(label[top:bottom], tax.id_of(part), where=m[top:bottom])
    return label


def mask_rows(masks: Mapping[str, np.ndarray]) -> dict[str, tuple[int, int]]:
    """``{part: (first row, last row + 1)}`` of each H x W bool mask's pixels ((0, 0): none)."""
    out = {}
    for part, m in masks.items():
        w = m.shape[1]
        words = m.view(np.uint64) if w % 8 == 0 and m.flags.c_contiguous else m  # 8 pixels a word
        filled = np.flatnonzero(words.any(axis=1))
        out[part] = (int(filled[0]), int(filled[-1]) + 1) if filled.size else (0, 0)
    return out
