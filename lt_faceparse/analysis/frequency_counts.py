"""The counting pass behind ``freq``: per-image label histograms of a dataset split, for one or
several merge presets, whole or one shard at a time; shards saved and merged back.

CelebAMask-HQ goes through :func:`lt_faceparse.data.label_pass.celebamask_histograms` (each mask
decoded once for every preset, label caches filled in the same pass, no torch); other datasets
through their dataset objects (:func:`lt_faceparse.data.label_pass.dataset_histograms`).

Shards (map/reduce): the images of a run, in the run's reading order, are cut into ``n`` consecutive
blocks; ``freq --shard i/n`` counts block ``i`` into ``shard-i-of-n.npz`` (histograms, image names,
cache fingerprints and the run's settings, no pickled objects) and ``freq-merge`` joins the ``n``
files in block order. The joined histograms are those of one unsharded run, row for row, so every
number of the report is the same.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from lt_faceparse.atomic import atomic_path
from lt_faceparse.data.cache import LabelCache
from lt_faceparse.data.celebamask_layout import (IMAGE_DIR, SPLITS, check_root, resolve_merge, scan_masks,
                                                 split_indices)
from lt_faceparse.data.files import source_dataset_of
from lt_faceparse.data.label_pass import CelebAPass, PassImage, celebamask_histograms, dataset_histograms
from lt_faceparse.errors import DataError
from lt_faceparse.terminal import progress_bar

SHARD_FORMAT = 1


@dataclass
class LabelCounts:
    """Histograms of a run's label maps: ``histograms`` is N x P x 256 (image, preset, label id),
    rows in the run's reading order (``first_row`` of ``total_rows`` for a shard). ``settings``: what
    was counted (dataset, root, split, splits, presets, merges, taxonomy); ``names``: each row's image
    (the CelebAMask-HQ pass: its cache entry, the HQ index); ``fingerprints``: the CelebAMask-HQ
    pass's cache fingerprint per row (empty for other passes)."""

    histograms: np.ndarray
    settings: dict[str, Any]
    names: list[str]
    fingerprints: list[str] = field(default_factory=list)
    first_row: int = 0
    total_rows: int | None = None

    def describe(self, row: int) -> str:
        """The image of ``row``, for messages."""
        name = self.names[row]
        if self.fingerprints:  # the CelebAMask-HQ pass: names are cache entries (HQ indices)
            return str(Path(self.settings["root"]) / IMAGE_DIR / f"{name}.jpg")
        return name

    def write_cache_manifests(self) -> None:
        """Record, in each preset's label cache, that every entry of this run is built."""
        if self.settings["dataset_format"] != "celebamask-hq" or not self.fingerprints:
            return
        entries = dict(zip(self.names, self.fingerprints))
        for preset in self.settings["presets"]:
            _, order = resolve_merge(preset)
            try:
                LabelCache.for_dataset(self.settings["root"], "celebamask-hq", order).write_manifest(entries)
            except OSError as err:
                warnings.warn(f"label cache manifest not written ({err})", stacklevel=2)


def shard_rows(total: int, shard: tuple[int, int] | None) -> range:
    """The rows of shard ``(i, n)`` (block ``i`` of ``n`` near-equal consecutive blocks)."""
    if shard is None:
        return range(total)
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard must be i/n with 0 <= i < n, got {i}/{n}")
    return range(i * total // n, (i + 1) * total // n)


def _celeba_split_lists(root: Path, split: str) -> list[tuple[str, list[int]]]:
    """(split, HQ indices) in reading order; with ``all``, a split whose images equal an earlier
    split's is read once (the rule of every dataset)."""
    by_split = split_indices(root)
    if split != "all":
        return [(split, by_split[split])]
    out: list[tuple[str, list[int]]] = []
    for s in SPLITS:
        if all(sorted(by_split[s]) != sorted(seen) for _, seen in out):
            out.append((s, by_split[s]))
    return out


def count_celebamask(root: str | Path, split: str, presets: Sequence[str], num_workers: int = 0, *,
                     shard: tuple[int, int] | None = None,
                     while_running: Callable[[], None] | None = None) -> LabelCounts:
    """One pass over CelebAMask-HQ ``split`` (or ``all``) for every preset in ``presets``."""
    root = check_root(root)
    merges = [resolve_merge(p) for p in presets]
    if split not in (*SPLITS, "all"):
        raise ValueError(f"unknown CelebAMask-HQ split {split!r}; use train, val, test or all")
    lists = _celeba_split_lists(root, split)
    caches = [LabelCache.for_dataset(root, "celebamask-hq", order) for _, order in merges]
    masks = scan_masks(root)
    indices = [idx for _, idxs in lists for idx in idxs]
    rows = shard_rows(len(indices), shard)
    images = [PassImage(idx, str(idx), masks.get(idx, {}))
              for idx in indices[rows.start:rows.stop]]
    plan = CelebAPass(root, [order for _, order in merges], caches)
    hist, fingerprints = [], []
    with progress_bar(f"class frequencies ({', '.join(m for m, _ in merges)})", len(images)) as bar:
        for h, f in celebamask_histograms(plan, images, num_workers, while_running=while_running,
                                          on_chunk=bar.advance):
            hist.append(h)
            fingerprints += f
    splits = [s for s, _ in lists]
    settings = {"dataset_format": "celebamask-hq", "dataset": source_dataset_of(root, "celebamask-hq"),
                "root": str(root), "split": splits[0] if len(splits) == 1 else "all", "splits": splits,
                "presets": [m for m, _ in merges], "merges": [m for m, _ in merges], "taxonomy": "celebamask-hq"}
    stacked = np.concatenate(hist) if hist else np.zeros((0, len(merges), 256), dtype=np.int64)
    return LabelCounts(stacked, settings, [im.name for im in images], fingerprints, rows.start, len(indices))


def count_datasets(datasets: Sequence[Any], num_workers: int = 0, *,
                   shard: tuple[int, int] | None = None) -> LabelCounts:
    """One pass over dataset objects sharing a taxonomy (read one after the other)."""
    total = sum(len(d) for d in datasets)
    rows = shard_rows(total, shard)
    first = datasets[0]
    with progress_bar(f"class frequencies ({first.taxonomy.name})", len(rows)) as bar:
        hist = dataset_histograms(datasets, num_workers, positions=rows, on_chunk=bar.advance)
    where = [(d, i) for d, ds in enumerate(datasets) for i in range(len(ds))][rows.start:rows.stop]
    names = [datasets[d].describe_item(i) if hasattr(datasets[d], "describe_item")
             else f"{getattr(datasets[d], 'root', None)} #{i}" for d, i in where]
    merges = [d.merge for d in datasets]
    settings = {"dataset_format": first.dataset_name, "dataset": getattr(first, "source_dataset", first.dataset_name),
                "root": str(first.root) if getattr(first, "root", None) is not None else None,
                "split": datasets[0].split if len(datasets) == 1 else "all", "splits": [d.split for d in datasets],
                "presets": [merges[0]], "merges": merges, "taxonomy": first.taxonomy.name}
    return LabelCounts(hist[:, None, :], settings, names, [], rows.start, total)


# ---- shards ---------------------------------------------------------------------------------------

def shard_path(out_dir: str | Path, shard: tuple[int, int]) -> Path:
    return Path(out_dir) / f"shard-{shard[0]}-of-{shard[1]}.npz"


def save_shard(counts: LabelCounts, out_dir: str | Path, shard: tuple[int, int], extra: dict) -> Path:
    """Write one shard's counts (one file, written atomically; loads without pickle)."""
    meta = {"format": SHARD_FORMAT, "shard": list(shard), "first_row": counts.first_row,
            "total_rows": counts.total_rows, "settings": counts.settings, "names": counts.names,
            "fingerprints": counts.fingerprints, "extra": extra}
    path = shard_path(out_dir, shard)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, histograms=counts.histograms, meta=np.array(json.dumps(meta)))
    return path


def _read_shard(path: Path) -> tuple[np.ndarray, dict]:
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            hist = data["histograms"]
    except (OSError, ValueError, KeyError) as err:
        raise DataError(path, f"not a freq shard file ({err})") from None
    if meta.get("format") != SHARD_FORMAT:
        raise DataError(path, f"shard format {meta.get('format')!r}, this version reads {SHARD_FORMAT}")
    return hist, meta


def load_shards(paths: Sequence[str | Path]) -> tuple[LabelCounts, dict]:
    """Join the shard files of one run (folders are searched for ``shard-*-of-*.npz``): all ``n`` of
    them, each once, counted with the same settings. Returns the run's counts and its extra settings."""
    files = []
    for p in map(Path, paths):
        files += sorted(p.glob("shard-*-of-*.npz")) if p.is_dir() else [p]
    if not files:
        raise DataError(None, f"no shard files (shard-I-of-N.npz) in {[str(p) for p in paths]}")
    shards = {}
    for f in files:
        hist, meta = _read_shard(f)
        i, n = meta["shard"]
        if i in shards:
            raise DataError(f, f"shard {i}/{n} given twice (also {shards[i][0]})")
        shards[i] = (f, hist, meta)
    first_file, _, first = shards[min(shards)]
    n = first["shard"][1]
    keys = ("settings", "total_rows", "extra")
    for f, _, meta in shards.values():
        for key in (*keys, "shard_count"):
            same = meta["shard"][1] == n if key == "shard_count" else meta.get(key) == first.get(key)
            if not same:
                raise DataError(f, f"shard counted with other {key.replace('_', ' ')} than {first_file}")
    missing = sorted(set(range(n)) - set(shards))
    if missing:
        raise DataError(first_file.parent, f"shards {missing} of {n} are missing")
    ordered = [shards[i] for i in range(n)]
    counts = LabelCounts(np.concatenate([h for _, h, _ in ordered]), first["settings"],
                         [name for _, _, m in ordered for name in m["names"]],
                         [fp for _, _, m in ordered for fp in m["fingerprints"]], 0, first["total_rows"])
    if len(counts.names) != counts.total_rows:
        raise DataError(first_file.parent, f"shards hold {len(counts.names)} images, the run has {counts.total_rows}")
    return counts, first.get("extra", {})
