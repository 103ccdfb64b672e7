"""The in-memory result record (:class:`ResultRecord`); fields mirror ``record.json``.

Schema versions: 1 (up to lt-faceparse 0.1.0 at commit 9204aca) held provenance as a free JSON
object; 2 holds the keys :class:`~lt_faceparse.records.Provenance` declares, with their types.
Records of version 1 migrate on load (:mod:`lt_faceparse.records.migrate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lt_faceparse.analysis.bins import f1_by_bin
from lt_faceparse.errors import DataError
from lt_faceparse.metrics.bootstrap import bootstrap_ci
from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.metrics.scores import CONVENTIONS
from lt_faceparse.records.accessors import record_taxonomy, remedy_parts
from lt_faceparse.records.provenance import Provenance
from lt_faceparse.taxonomy import Taxonomy

SCHEMA_VERSION = 2

MEAN_KEYS = ("mean_f1", "mean_iou_with_bg", "mean_iou_without_bg", "pixel_accuracy")


@dataclass
class ResultRecord:
    """Scores and provenance of one evaluation (see :mod:`lt_faceparse.records`; fields mirror ``record.json``).

    ``per_class``: list (index = class id) of ``{id, name, f1, iou, precision, recall, gt_pixels,
    pred_pixels, intersection}``; ``groups``: ``{name: {members, f1, iou, precision, recall, ...}}``;
    ``bins``: ``{bin: [class names]}`` with ``bins_source`` saying which split's frequencies made them;
    ``f1_by_bin``: ``{bin: mean foreground F1}``; ``ci``: bootstrap intervals (``BootstrapCI.to_dict``);
    ``confusion``: K x K counts (rows = ground truth) or None for reported records;
    ``taxonomy_definition``: the whole taxonomy (``Taxonomy.to_dict``), so reports print its display
    names and colours in any process (None in records written before records held it).
    """

    taxonomy: str
    per_class: list[dict[str, Any]]
    mean_f1: float
    mean_iou_with_bg: float
    mean_iou_without_bg: float
    pixel_accuracy: float
    num_images: int | None
    provenance: Provenance
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    undefined_classes: list[str] = field(default_factory=list)
    bins: dict[str, list[str]] | None = None
    bins_source: dict[str, Any] | None = None
    f1_by_bin: dict[str, float | None] | None = None
    confusion: list[list[int]] | None = None
    ci: dict[str, Any] | None = None
    taxonomy_definition: dict[str, Any] | None = None
    conventions: dict[str, str] = field(default_factory=lambda: dict(CONVENTIONS))
    schema_version: int = SCHEMA_VERSION
    per_image_file: str | None = None
    path: Path | None = field(default=None, compare=False, repr=False)
    _per_image: PerImageStats | None = field(default=None, compare=False, repr=False)

    # ---- views ---------------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.per_class]

    @property
    def reported(self) -> bool:
        return self.provenance.reported

    @property
    def label(self) -> str:
        """Short row label: model (backbone) @ resolution, or the file name; then the long-tail
        remedies and post-hoc options, e.g. ``segface (mobilenet) @64 +focal(γ=2) +flip TTA``."""
        p = self.provenance
        parts = [str(p.model or (self.path.parent.name if self.path else "?"))]
        if p.backbone:
            parts.append(f"({p.backbone})")
        if p.resolution:
            parts.append(f"@{p.resolution}")
        parts += [f"+{part}" for part in remedy_parts(p)]
        return " ".join(parts)

    def per_class_f1(self) -> dict[str, float]:
        """Class name -> F1 (NaN when undefined or not reported)."""
        return {c["name"]: c["f1"] for c in self.per_class}

    def per_class_iou(self) -> dict[str, float]:
        return {c["name"]: c["iou"] for c in self.per_class}

    def confusion_matrix(self) -> np.ndarray | None:
        return None if self.confusion is None else np.asarray(self.confusion, dtype=np.int64)

    @property
    def per_image(self) -> PerImageStats | None:
        """Per-image stats, read lazily from the npz side file (None for reported records)."""
        if self._per_image is None and self.per_image_file and self.path is not None:
            npz = self.path.parent / self.per_image_file
            if not npz.is_file():
                raise DataError(npz, f"per-image side file of {self.path} is missing")
            stats = PerImageStats.from_npz(npz)
            if stats.num_classes != len(self.per_class) or stats.num_images != self.num_images:
                raise DataError(npz, f"holds {stats.num_images} images x {stats.num_classes} classes, "
                                     f"record {self.path} says {self.num_images} x {len(self.per_class)}")
            if not np.array_equal(stats.gt.sum(0), [c["gt_pixels"] for c in self.per_class]):
                raise DataError(npz, f"per-image counts do not add up to the counts in {self.path}")
            self._per_image = stats
        return self._per_image

    def to_frame(self):
        """Per-class table (pandas), one row per class."""
        import pandas as pd  # lazy: heavy, imported only when a table is asked for

        return pd.DataFrame(self.per_class)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> null)."""
        out = {
            "schema_version": self.schema_version, "taxonomy": self.taxonomy,
            "num_images": self.num_images,
            **{k: getattr(self, k) for k in MEAN_KEYS},
            "per_class": self.per_class, "groups": self.groups, "undefined_classes": self.undefined_classes,
            "bins": self.bins, "bins_source": self.bins_source, "f1_by_bin": self.f1_by_bin,
            "ci": self.ci, "taxonomy_definition": self.taxonomy_definition,
            "conventions": self.conventions, "provenance": self.provenance.to_dict(),
            "per_image_file": self.per_image_file, "confusion": self.confusion,
        }
        return _nan_to_none(out)

    def with_bins(self, bins: Any) -> "ResultRecord":
        """Copy with ``bins`` (``{bin: [names or ids]}`` or a ``FrequencyTable``, e.g. of the training
        split) and the F1@bin means recomputed from this record's per-class F1."""
        taxonomy = record_taxonomy(self)
        bin_map, source = _bins_arg(bins, taxonomy)
        fg = [taxonomy.names[i] for i in taxonomy.foreground_ids]
        return replace(self, bins=bin_map, bins_source=source, _per_image=self._per_image,
                       f1_by_bin=None if bin_map is None else f1_by_bin(self.per_class_f1(), bin_map, fg))

    def with_bootstrap_ci(self, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> "ResultRecord":
        """Copy with ``ci`` filled from the per-image stats (percentile bootstrap over images)."""
        stats = self.per_image
        if stats is None:
            raise ValueError(f"record {self.label!r} has no per-image stats to bootstrap")
        ci = bootstrap_ci(stats, record_taxonomy(self), n_resamples=n_resamples, confidence=confidence, seed=seed)
        return replace(self, ci=ci.to_dict(), _per_image=stats)


def _bins_arg(bins: Any, taxonomy: Taxonomy) -> tuple[dict[str, list[str]] | None, dict | None]:
    """Accept ``{bin: [names or ids]}`` or a FrequencyTable; return (bins by name, source)."""
    if bins is None:
        return None, None
    source = None
    if hasattr(bins, "bins") and callable(bins.bins):  # FrequencyTable
        source = {k: bins.summary.get(k) for k in ("dataset", "split", "merge", "num_images", "thresholds")}
        bins = bins.bins()
    out = {}
    for name, members in dict(bins).items():
        out[name] = [taxonomy.names[m] if isinstance(m, (int, np.integer)) else taxonomy.names[taxonomy.id_of(m)]
                     for m in members]
    return out, source



def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, (np.floating,)):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj

