"""CelebAMask-HQ read from the tree as distributed.

```
ROOT/CelebA-HQ-img/{idx}.jpg                                  1024 x 1024
ROOT/CelebAMask-HQ-mask-anno/{idx // 2000}/{idx:05d}_{part}.png  512 x 512, one file per present part
ROOT/CelebA-HQ-to-CelebA-mapping.txt                          "idx orig_idx orig_file"
ROOT/list_eval_partition.txt                                  optional (CelebA's): "000001.jpg 0"
```
Label maps are painted from the per-part masks in a merge order (later parts overwrite earlier
ones; any non-zero mask pixel belongs to the part); ids are always SegFace's (taxonomy
``celebamask-hq``), whatever the order. The label resolution is the mask resolution (512): images
are resized onto it, and ``Sample.orig_size`` is the mask size.

Split: each HQ image maps to a CelebA file (mapping file); that file's split comes from
``list_eval_partition.txt`` when present, else from CelebA's index rule (files 1..162770 train,
162771..182637 val, 182638.. test), which gives 24,183 / 2,993 / 2,824 images.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from rich.progress import Progress

from lt_faceparse.data.base import FaceParsingDataset, open_image, read_rgb
from lt_faceparse.data.build import iter_labels
from lt_faceparse.data.cache import LabelCache, files_fingerprint
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


def scan_masks(root: str | Path) -> dict[int, dict[str, Path]]:
    """Every mask file of the tree: HQ index -> {part: path}. Unknown part names are skipped
    (``check_dataset`` reports them)."""
    mask_root = Path(root) / MASK_DIR
    if not mask_root.is_dir():
        raise DataError(mask_root, "mask folder not found")
    found: dict[int, dict[str, Path]] = {}
    for sub in sorted(os.scandir(mask_root), key=lambda e: e.name):
        if not sub.is_dir() or not sub.name.isdigit():
            continue
        for entry in os.scandir(sub.path):
            m = _MASK_NAME.match(entry.name)
            if m and m.group(2) in PARTS:
                found.setdefault(int(m.group(1)), {})[m.group(2)] = Path(entry.path)
    return found


def read_part_mask(path: str | Path) -> np.ndarray:
    """H x W bool: any non-zero pixel (gray, RGB or palette index) belongs to the part."""
    img = open_image(path)
    arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., :3].max(axis=2) if arr.shape[2] >= 3 else arr[..., 0]
    return arr > 0


def merge_part_masks(masks: dict[str, np.ndarray], order: Iterable[str],
                     shape: tuple[int, int] | None = None) -> np.ndarray:
    """Paint part masks in ``order`` (later overwrites earlier) into SegFace ids (uint8 H x W)."""
    tax = get_taxonomy("celebamask-hq")
    if shape is None:
        if not masks:
            raise ValueError("merge_part_masks: no masks and no shape")
        shape = next(iter(masks.values())).shape
    label = np.zeros(shape, dtype=np.uint8)
    for part in order:
        m = masks.get(part)
        if m is not None:
            label[m] = tax.id_of(part)
    return label


def _warn_unmapped_images(root: Path, mapped: set[int]) -> None:
    """Warn, with their count, about images the mapping file does not list (a file cut short): they
    belong to no split and are left out."""
    images = [e.name for e in os.scandir(root / IMAGE_DIR) if e.name.endswith(".jpg") and e.name[:-4].isdigit()]
    unmapped = sorted((n for n in images if int(n[:-4]) not in mapped), key=lambda n: int(n[:-4]))
    if unmapped:
        warnings.warn(f"{root / MAPPING_FILE}: lists {len(images) - len(unmapped)} of the {len(images)} images in "
                      f"{IMAGE_DIR}; the other {len(unmapped)} (e.g. {unmapped[0]}) belong to no split and are "
                      "left out (is the file cut short?)", stacklevel=3)


class CelebAMaskHQ(FaceParsingDataset):
    """CelebAMask-HQ split with label maps merged from the part masks (cached on disk).

    ``split``: ``train``, ``val``, ``test`` or ``all``. ``merge``: preset name or list of parts.
    ``cache_dir``: base folder of the label cache (None = default location, False = no cache).
    ``num_workers > 0`` builds the missing cache entries at once with that many processes.
    """

    dataset_name = "celebamask-hq"
    exact_label_size = False  # 1024 px images, 512 px masks
    has_merge_order = True

    def __init__(self, root: str | Path, split: str = "train", *, merge: str | Sequence[str] = "segface",
                 cache_dir: str | Path | bool | None = None, num_workers: int = 0, **kwargs):
        root = Path(root)
        if not (root / IMAGE_DIR).is_dir():
            raise DataError(root / IMAGE_DIR, "image folder not found (is this a CelebAMask-HQ root?)")
        self.merge_name, self.merge_order = resolve_merge(merge)
        splits = split_indices(root)
        if split == "all":
            indices = sorted(i for s in SPLITS for i in splits[s])
        elif split in splits:
            indices = splits[split]
        else:
            raise ValueError(f"unknown CelebAMask-HQ split {split!r}; use train, val, test or all")
        self.indices = indices
        _warn_unmapped_images(root, {i for s in splits.values() for i in s})
        self._masks = scan_masks(root)
        super().__init__(root, split, get_taxonomy("celebamask-hq"), [str(i) for i in indices],
                         merge=self.merge_name, **kwargs)
        self.cache = None
        if cache_dir is not False:
            self.cache = LabelCache.for_dataset(root, self.dataset_name, self.merge_order,
                                                None if cache_dir in (None, True) else cache_dir)
        if num_workers > 0 and self.cache is not None and self.cache_status().state != "complete":
            self.build_cache(num_workers)

    # ---- files ----------------------------------------------------------------------------------
    def image_path(self, index: int) -> Path:
        return self.root / IMAGE_DIR / f"{self.indices[index]}.jpg"

    def mask_files(self, index: int) -> dict[str, Path]:
        """{part: path} of the mask files present for example ``index``."""
        return self._masks.get(self.indices[index], {})

    def describe_item(self, index: int) -> str:
        return str(self.image_path(index))

    def fingerprint(self, index: int) -> str:
        files = self.mask_files(index)
        if not files:
            raise DataError(mask_path(self.root, self.indices[index], "*").parent,
                            f"no mask files for image {self.indices[index]}")
        try:
            return files_fingerprint(files.values())
        except FileNotFoundError as err:
            raise DataError(err.filename, "mask file disappeared since the tree was scanned") from None

    # ---- raw reads ------------------------------------------------------------------------------
    def read_image(self, index: int) -> np.ndarray:
        return read_rgb(self.image_path(index))

    def build_label(self, index: int) -> np.ndarray:
        """Merge the part masks of example ``index`` (no cache)."""
        files = self.mask_files(index)
        if not files:
            raise DataError(mask_path(self.root, self.indices[index], "*").parent,
                            f"no mask files for image {self.indices[index]}")
        masks: dict[str, np.ndarray] = {}
        shape = None
        for part in self.merge_order:
            if part not in files:
                continue
            m = read_part_mask(files[part])
            if shape is None:
                shape = m.shape
            elif m.shape != shape:
                raise DataError(files[part], f"mask size {m.shape[1]}x{m.shape[0]} differs from the other "
                                             f"masks of this image ({shape[1]}x{shape[0]})")
            masks[part] = m
        if shape is None:  # only parts outside the merge order exist: size from any of them
            shape = read_part_mask(next(iter(files.values()))).shape
        return merge_part_masks(masks, self.merge_order, shape)

    def read_label(self, index: int) -> np.ndarray:
        if self.cache is None:
            return self.build_label(index)
        fp = self.fingerprint(index)
        name = self.names[index]
        label = self.cache.get(name, fp)
        if label is None:
            label = self.build_label(index)
            try:
                self.cache.put(name, fp, label)
            except OSError as err:  # cache folder not writable: keep working without it
                warnings.warn(f"label cache {self.cache.directory} not writable ({err}); caching disabled",
                              stacklevel=2)
                self.cache = None
        return label

    # ---- cache ----------------------------------------------------------------------------------
    def fingerprints(self) -> dict[str, str]:
        return {self.names[i]: self.fingerprint(i) for i in range(len(self))}

    def cache_status(self):
        """:class:`~lt_faceparse.data.cache.CacheStatus` of this split's entries (None without cache)."""
        return None if self.cache is None else self.cache.status(self.fingerprints())

    def build_cache(self, num_workers: int = 0) -> None:
        """Build every missing or stale entry (in parallel) and record the finished pass."""
        with Progress(disable=not sys.stderr.isatty(), transient=True) as progress:
            task = progress.add_task(f"label cache ({self.merge_name})", total=len(self))
            for _ in iter_labels(self, num_workers=num_workers):
                progress.advance(task)

    def finish_pass(self) -> None:
        """Called after a full pass over every label: marks the cache complete."""
        if self.cache is not None:
            try:
                self.cache.write_manifest(self.fingerprints())
            except OSError as err:
                warnings.warn(f"label cache manifest not written ({err})", stacklevel=2)
