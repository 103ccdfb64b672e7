"""One pass over a dataset's label maps that returns, per image, the histogram of its label ids.

Workers get chunks of images (:func:`~lt_faceparse.data.chunk_pool.map_chunks`) and send back
histograms (256 counts per image and label map), never the maps themselves.

:func:`celebamask_histograms` is CelebAMask-HQ's pass: it decodes each image's part masks once,
paints every requested merge order from them, fills each order's label cache in the same pass (or
reads the maps from a cache that already holds them) and needs no torch. It counts each map from its
runs (:class:`~lt_faceparse.data.label_runs.LabelRuns`), which are also what the cache stores.
:func:`dataset_histograms` is the pass over any dataset object with ``read_label``.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from lt_faceparse.data.cache import LabelCache
from lt_faceparse.data.celebamask_layout import mask_files_fingerprint, mask_rows, merge_part_masks, read_parts
from lt_faceparse.data.chunk_pool import chunk_count, map_chunks, split_even
from lt_faceparse.data.label_runs import LabelRuns
from lt_faceparse.runtime import reuse_decode_memory


def label_histogram(label: np.ndarray) -> np.ndarray:
    """Counts of the values 0..255 in an H x W uint8 label map (int64, length 256)."""
    label = np.ascontiguousarray(label, dtype=np.uint8)
    if label.ndim != 2:
        raise ValueError(f"label_histogram: need an H x W map, got shape {label.shape}")
    if label.size == 0:
        return np.zeros(256, dtype=np.int64)
    # Pillow's C histogram: four times faster than np.bincount, which first widens to int64
    img = Image.frombuffer("L", (label.shape[1], label.shape[0]), label, "raw", "L", 0, 1)
    return np.asarray(img.histogram(), dtype=np.int64)


# ---- any dataset ------------------------------------------------------------------------------------

_DATASETS: list[Any] = []


def _set_datasets(datasets: list[Any]) -> None:
    _DATASETS[:] = datasets
    _worker_settings()


def _worker_settings() -> None:
    """Workers use one thread each (torch, if this process already loaded it) and reuse the memory
    of the images they decode (:func:`lt_faceparse.runtime.reuse_decode_memory`)."""
    reuse_decode_memory()
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _dataset_chunk(positions: Sequence[tuple[int, int]]) -> np.ndarray:
    return np.stack([label_histogram(_DATASETS[d].read_label(i)) for d, i in positions])


def dataset_histograms(datasets: Sequence[Any], num_workers: int = 0, *, positions: range | None = None,
                       on_chunk: Callable[[int], None] | None = None) -> np.ndarray:
    """N x 256 histograms of the label maps of ``datasets`` (read one after the other, each in index
    order), or of the images at ``positions`` in that order. ``on_chunk(n)`` after each n images."""
    order = [(d, i) for d, ds in enumerate(datasets) for i in range(len(ds))]
    order = order if positions is None else [order[p] for p in positions]
    chunks = split_even(order, chunk_count(len(order), num_workers))
    rows = []
    for result in map_chunks(_dataset_chunk, chunks, num_workers, initializer=_set_datasets,
                             initargs=(list(datasets),)):
        rows.append(result)
        if on_chunk is not None:
            on_chunk(len(result))
    return np.concatenate(rows) if rows else np.zeros((0, 256), dtype=np.int64)


# ---- CelebAMask-HQ: decode once, paint every merge order -------------------------------------------

@dataclass
class CelebAPass:
    """What one CelebAMask-HQ pass paints: the dataset ``root``, the merge ``orders`` (paint orders
    of parts) and, per order, the label cache to read and fill (None: no cache)."""

    root: Path
    orders: list[tuple[str, ...]]
    caches: list[LabelCache | None]


@dataclass(frozen=True)
class PassImage:
    """One image of the pass: HQ index, cache entry name and its mask files ({part: path})."""

    idx: int
    name: str
    files: dict[str, str]


_PLAN: list[CelebAPass] = []


def _set_plan(plan: CelebAPass) -> None:
    _PLAN[:] = [plan]
    _worker_settings()


def _image_runs(plan: CelebAPass, image: PassImage, fingerprint: str) -> list[LabelRuns]:
    """The label map of ``image`` under every order, as runs: from the caches, else painted from the
    part masks, which are decoded once for all orders the caches lack (and written to those caches)."""
    runs = [None if c is None else c.get(image.name, fingerprint) for c in plan.caches]
    todo = [j for j, r in enumerate(runs) if r is None]
    if todo:
        parts = list(dict.fromkeys(p for j in todo for p in plan.orders[j]))
        masks, shape = read_parts(plan.root, image.idx, image.files, parts)
        rows = mask_rows(masks) if len(todo) > 1 else None  # painted several times: only where they are
        for j in todo:
            runs[j] = LabelRuns.of(merge_part_masks(masks, plan.orders[j], shape, rows))
            _put(plan, j, image.name, fingerprint, runs[j])
    return runs


def _put(plan: CelebAPass, j: int, name: str, fingerprint: str, runs: LabelRuns) -> None:
    cache = plan.caches[j]
    if cache is None:
        return
    try:
        cache.put(name, fingerprint, runs)
    except OSError as err:  # cache folder not writable: keep counting without it
        warnings.warn(f"label cache {cache.directory} not writable ({err}); caching disabled", stacklevel=2)
        plan.caches[j] = None


def _celeba_chunk(images: Sequence[PassImage]) -> tuple[np.ndarray, list[str]]:
    plan = _PLAN[0]
    hist = np.zeros((len(images), len(plan.orders), 256), dtype=np.int64)
    fingerprints = []
    for row, image in enumerate(images):
        fingerprint = mask_files_fingerprint(plan.root, image.idx, image.files.values())
        for j, runs in enumerate(_image_runs(plan, image, fingerprint)):
            hist[row, j] = runs.histogram()
        fingerprints.append(fingerprint)
    return hist, fingerprints


def celebamask_histograms(plan: CelebAPass, images: Sequence[PassImage], num_workers: int = 0, *,
                          while_running: Callable[[], None] | None = None,
                          on_chunk: Callable[[int], None] | None = None) -> Iterator[tuple[np.ndarray, list[str]]]:
    """Per chunk of ``images`` (in order): n x len(orders) x 256 histograms and the n images' cache
    fingerprints. ``while_running``: this process's own work while the workers decode."""
    chunks = split_even(list(images), chunk_count(len(images), num_workers))
    for hist, fingerprints in map_chunks(_celeba_chunk, chunks, num_workers, initializer=_set_plan,
                                         initargs=(plan,), while_running=while_running):
        if on_chunk is not None:
            on_chunk(len(fingerprints))
        yield hist, fingerprints
