"""CelebAMask-HQ read from the tree as distributed (the layout: :mod:`lt_faceparse.data.celebamask_layout`).

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
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from lt_faceparse.data.base import FaceParsingDataset, read_rgb
from lt_faceparse.data.build import iter_labels
from lt_faceparse.data.cache import LabelCache
from lt_faceparse.data.celebamask_layout import (
    IMAGE_DIR,
    MAPPING_FILE,
    SPLITS,
    check_root,
    mask_files_fingerprint,
    merge_part_masks,
    read_parts,
    resolve_merge,
    scan_masks,
    split_indices,
)
from lt_faceparse.data.label_runs import LabelRuns
from lt_faceparse.taxonomy import get_taxonomy
from lt_faceparse.terminal import progress_bar


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

    def __init__(self, root: str | Path, split: str = "train", *, merge: str | Sequence[str] = "segface",
                 cache_dir: str | Path | bool | None = None, num_workers: int = 0, **kwargs):
        root = check_root(root)
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

    def mask_files(self, index: int) -> dict[str, str]:
        """{part: path} of the mask files present for example ``index``."""
        return self._masks.get(self.indices[index], {})

    def describe_item(self, index: int) -> str:
        return str(self.image_path(index))

    def fingerprint(self, index: int) -> str:
        return mask_files_fingerprint(self.root, self.indices[index], self.mask_files(index).values())

    # ---- raw reads ------------------------------------------------------------------------------
    def read_image(self, index: int) -> np.ndarray:
        return read_rgb(self.image_path(index))

    def build_label(self, index: int) -> np.ndarray:
        """Merge the part masks of example ``index`` (no cache)."""
        masks, shape = read_parts(self.root, self.indices[index], self.mask_files(index), self.merge_order)
        return merge_part_masks(masks, self.merge_order, shape)

    def read_label(self, index: int) -> np.ndarray:
        if self.cache is None:
            return self.build_label(index)
        fp = self.fingerprint(index)
        name = self.names[index]
        runs = self.cache.get(name, fp)
        if runs is not None:
            return runs.label()
        label = self.build_label(index)
        try:
            self.cache.put(name, fp, LabelRuns.of(label))
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
        with progress_bar(f"label cache ({self.merge_name})", len(self)) as bar:
            for _ in iter_labels(self, num_workers=num_workers):
                bar.advance()

    def finish_pass(self) -> None:
        """Called after a full pass over every label: marks the cache complete."""
        if self.cache is not None:
            try:
                self.cache.write_manifest(self.fingerprints())
            except OSError as err:
                warnings.warn(f"label cache manifest not written ({err})", stacklevel=2)
