"""Class priors for the long-tail remedies: counts of the training split, computed once and cached,
or read from a ``class_frequencies.csv`` written by ``lt-faceparse freq``.

What is counted (the same as ``lt-faceparse freq``, whose counter this reuses:
:func:`lt_faceparse.analysis.frequency.compute_class_frequencies`): per class, the pixels of every
label map at its native label resolution (255 = ignore counts nowhere) and the images that contain
the class. Losses use pixel counts (``n_c`` of a per-pixel loss; logit adjustment's prior
``π_c = n_c / Σ n``) unless a remedy says ``counts: images``; repeat-factor sampling uses image
presence ``f_c = images_with_class / num_images``. A class that never occurs counts as 1 (pixel or
image) wherever a prior, a log prior or an inverse enters a formula, so every value stays finite.

Cache: one ``.npz`` per (dataset root, format, split, merge preset) under
``<cache base>/class_priors/`` (the label cache's base: ``ROOT/.lt_faceparse_cache`` when the root is
writable, else ``$LT_FACEPARSE_CACHE`` or ``~/.cache/lt_faceparse``). It stores the counts, the per-image
presence table and a fingerprint of the label files (names, sizes, modification times); a changed
tree is recounted, never silently reused. Counting at native resolution makes the counts
independent of the network resolution, so the resolution is not part of the key.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lt_faceparse.analysis.frequency import compute_class_frequencies
from lt_faceparse.atomic import atomic_save_npz
from lt_faceparse.data.cache import default_cache_base, files_fingerprint
from lt_faceparse.errors import DataError
from lt_faceparse.longtail.spec import canonical_longtail
from lt_faceparse.taxonomy import Taxonomy

COUNTED = ("pixels of each label map at its native resolution (255 ignored); images containing the class; "
           "as `lt-faceparse freq` counts")
CACHE_VERSION = 1


@dataclass(frozen=True)
class ClassPriors:
    """Per-class counts of a training split (index = class id) and where they come from."""

    class_names: tuple[str, ...]
    pixel_counts: np.ndarray  # K int64
    images_with_class: np.ndarray  # K int64
    num_images: int
    source: str

    def __post_init__(self) -> None:
        k = len(self.class_names)
        if self.pixel_counts.shape != (k,) or self.images_with_class.shape != (k,):
            raise ValueError(f"class priors: {k} classes but counts of shape {self.pixel_counts.shape} "
                             f"and {self.images_with_class.shape}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def counts(self, unit: str = "pixels") -> np.ndarray:
        """K float64 counts (``pixels`` or ``images``), zero counts raised to 1."""
        if unit not in ("pixels", "images"):
            raise ValueError(f"count unit must be 'pixels' or 'images', got {unit!r}")
        raw = self.pixel_counts if unit == "pixels" else self.images_with_class
        return np.maximum(raw.astype(np.float64), 1.0)

    def pixel_prior(self) -> np.ndarray:
        """π_c = n_c / Σ n over pixels (zero counts raised to 1)."""
        counts = self.counts("pixels")
        return counts / counts.sum()

    def log_pixel_prior(self) -> np.ndarray:
        return np.log(self.pixel_prior())

    def presence(self) -> np.ndarray:
        """f_c = share of the images that contain class c (exactly; 0 for a class never seen)."""
        return self.images_with_class.astype(np.float64) / self.num_images

    def check_taxonomy(self, taxonomy: Taxonomy, where: str | Path | None = None) -> None:
        if list(self.class_names) != taxonomy.names:
            raise DataError(where or self.source, f"class priors name the classes {list(self.class_names)}, "
                                                  f"the taxonomy {taxonomy.name!r} has {taxonomy.names}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML form (what ``longtail.priors`` accepts and config files store)."""
        return {
            "class_names": list(self.class_names),
            "pixel_counts": [int(v) for v in self.pixel_counts],
            "images_with_class": [int(v) for v in self.images_with_class],
            "num_images": int(self.num_images),
            "source": self.source,
            "counted": COUNTED,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str | Path | None = None) -> "ClassPriors":
        """Inverse of :meth:`to_dict` (validated by :func:`lt_faceparse.longtail.spec.canonical_longtail`)."""
        canonical_longtail({"priors": data}, source=where)
        return cls(tuple(data["class_names"]), np.asarray(data["pixel_counts"], dtype=np.int64),
                   np.asarray(data["images_with_class"], dtype=np.int64), int(data["num_images"]),
                   str(data["source"]))


def read_priors_csv(path: str | Path, taxonomy: Taxonomy | None = None) -> ClassPriors:
    """Priors from a ``class_frequencies.csv`` of ``lt-faceparse freq``; errors name the file.

    The number of images comes from ``images_with_class / presence_prob`` (every class present in
    some image must agree on it).
    """
    import pandas as pd  # lazy: pandas (~0.4 s) only for table output

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "class-frequency file not found (write one with `lt-faceparse freq`)")
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(path, f"not a readable CSV ({err})") from None
    needed = ("class_id", "class_name", "images_with_class", "presence_prob", "pixel_count")
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing columns {missing} (expected the class_frequencies.csv of `lt-faceparse freq`)")
    if frame["class_id"].tolist() != list(range(len(frame))):
        raise DataError(path, f"class_id must run 0..{len(frame) - 1} in order, got {frame['class_id'].tolist()}")
    try:
        pixels = frame["pixel_count"].to_numpy(dtype=np.int64)
        images = frame["images_with_class"].to_numpy(dtype=np.int64)
        presence = frame["presence_prob"].to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise DataError(path, f"counts must be integers and presence_prob numbers ({err})") from None
    if (pixels < 0).any() or (images < 0).any() or not np.all((presence >= 0) & (presence <= 1)):
        raise DataError(path, "counts must be >= 0 and presence_prob within [0, 1]")
    seen = presence > 0
    if not seen.any():
        raise DataError(path, "no class is present in any image")
    estimates = images[seen] / presence[seen]
    num_images = int(round(float(np.median(estimates))))
    if num_images < 1 or np.any(np.abs(estimates - num_images) > 0.5 + 1e-6 * num_images) or images.max() > num_images:
        raise DataError(path, f"images_with_class / presence_prob disagree between classes "
                              f"({sorted(set(np.round(estimates, 2).tolist()))}); not a class_frequencies.csv "
                              "of one split")
    priors = ClassPriors(tuple(frame["class_name"].astype(str)), pixels, images, num_images, f"file {path}")
    if taxonomy is not None:
        priors.check_taxonomy(taxonomy, path)
    return priors


@dataclass(frozen=True)
class SplitStatistics:
    """Counts of a training split plus which classes each image contains (rows = dataset indices)."""

    priors: ClassPriors
    presence: np.ndarray  # N x K bool


def describe_split(dataset: Any) -> str:
    """How a split is named in a priors ``source``: split, root, format and merge preset."""
    name = getattr(dataset, "source_dataset", None) or getattr(dataset, "dataset_name", "dataset")
    merge = getattr(dataset, "merge", None)
    root = getattr(dataset, "root", None)
    where = f" of {root}" if root is not None else ""
    return f"{getattr(dataset, 'split', '?')} split{where} ({name}{f', merge {merge}' if merge else ''})"


def _label_fingerprint(dataset: Any) -> str | None:
    """Hash of the files the labels come from (None when the dataset does not name them)."""
    if hasattr(dataset, "fingerprints"):  # CelebAMask-HQ: the part masks of every image
        text = json.dumps(dataset.fingerprints(), sort_keys=True)
    elif hasattr(dataset, "label_path"):
        try:
            text = json.dumps([dataset.names, files_fingerprint(dataset.label_path(i) for i in range(len(dataset)))])
        except FileNotFoundError as err:
            raise DataError(err.filename, "label file disappeared since the split was listed") from None
    else:
        return None
    return hashlib.sha1(text.encode()).hexdigest()


def _cache_file(dataset: Any, cache_dir: str | Path | None) -> Path | None:
    root = getattr(dataset, "root", None)
    if root is None:
        return None
    base = Path(cache_dir) if cache_dir is not None else default_cache_base(root) / "class_priors"
    key = json.dumps([str(Path(root).resolve()), getattr(dataset, "dataset_name", None),
                      getattr(dataset, "split", None), str(getattr(dataset, "merge", None)), CACHE_VERSION])
    return base / f"{getattr(dataset, 'split', 'split')}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _load_cached(path: Path, fingerprint: str, names: list[str], taxonomy: Taxonomy,
                 source: str) -> SplitStatistics | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["fingerprint"]) != fingerprint or data["names"].tolist() != names \
                    or data["class_names"].tolist() != taxonomy.names:
                return None
            priors = ClassPriors(tuple(taxonomy.names), data["pixel_counts"].astype(np.int64),
                                 data["images_with_class"].astype(np.int64), int(data["num_images"]), source)
            return SplitStatistics(priors, data["presence"].astype(bool))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):  # partial or foreign file: recount
        return None


def split_statistics(dataset: Any, *, cache: bool = True, cache_dir: str | Path | None = None,
                     num_workers: int = 0) -> SplitStatistics:
    """Class counts and per-image presence of ``dataset`` (every label read once, then cached).

    ``dataset``: any dataset with ``taxonomy``, ``read_label`` and ``names`` (see
    :func:`lt_faceparse.analysis.frequency.compute_class_frequencies`). Datasets that do not name
    their label files (in-memory ones) are counted every time.
    """
    taxonomy = dataset.taxonomy
    source = f"{describe_split(dataset)}: {len(dataset)} images, {COUNTED}"
    path = _cache_file(dataset, cache_dir) if cache else None
    fingerprint = _label_fingerprint(dataset) if path is not None else None
    names = [str(n) for n in getattr(dataset, "names", range(len(dataset)))]
    if path is not None and fingerprint is not None and path.is_file():
        cached = _load_cached(path, fingerprint, names, taxonomy, source)
        if cached is not None:
            return cached
    table = compute_class_frequencies(dataset, num_workers)
    priors = ClassPriors(tuple(taxonomy.names), table.columns["pixel_count"].astype(np.int64),
                         table.columns["images_with_class"].astype(np.int64), int(table.summary["num_images"]), source)
    stats = SplitStatistics(priors, table.image_presence)
    if path is not None and fingerprint is not None:
        try:
            atomic_save_npz(path, fingerprint=np.array(fingerprint), names=np.array(names),
                            class_names=np.array(taxonomy.names), pixel_counts=priors.pixel_counts,
                            images_with_class=priors.images_with_class, num_images=np.array(priors.num_images),
                            presence=stats.presence)
        except OSError:  # read-only cache location: counting again next time is correct, only slower
            pass
    return stats
