"""The rarity gap: how much of a tail class's low score is rarity, and how much of it a remedy closes.

A *control* model trains on a split drawn from the same generator with the tail classes frequent
(balanced presence) and is scored on the same test images as the *long-tail* model. Per tail class
(:attr:`Taxonomy.accessory_ids`):

- rarity gap = F1(control) − F1(long-tail);
- share of the gap a remedy closes = (F1(remedy) − F1(long-tail)) / gap;
- a class whose control F1 is below ``bound`` (default 0.5) is **resolution-bound**: even frequent,
  the model does not resolve it, so remedies are not judged on it.

The tail-mean row does the same with the mean F1 over the tail classes that are *not*
resolution-bound (undefined when all are). Every estimate has a percentile interval from one paired
bootstrap over the test images: each resample draws the same images for every record
(:mod:`lt_faceparse.metrics.bootstrap`'s resampling), so the gap and each share are computed on the
same draws; a resample in which the gap is not positive leaves the share undefined (skipped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from lt_faceparse.errors import IncomparableError
from lt_faceparse.metrics.bootstrap import (_aligned_stats, _percentile_ci, _point_f1, _resample_weights,
                                            _resampled_f1, group_mean_f1, per_image_of)

RESOLUTION_BOUND_F1 = 0.5
TAIL_MEAN = "tail mean"


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its percentile interval (NaN when undefined)."""

    value: float
    lower: float
    upper: float

    def to_dict(self) -> dict[str, float | None]:
        return {k: None if math.isnan(v) else v for k, v in
                (("value", self.value), ("lower", self.lower), ("upper", self.upper))}


@dataclass(frozen=True)
class GapRow:
    """One tail class (or the tail mean): control and long-tail F1, the gap, the share each remedy closes."""

    name: str
    control_f1: float
    longtail_f1: float
    gap: Estimate
    resolution_bound: bool
    closed: dict[str, Estimate] = field(default_factory=dict)
    remedy_f1: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "control_f1": self.control_f1, "longtail_f1": self.longtail_f1,
                "gap": self.gap.to_dict(), "resolution_bound": self.resolution_bound,
                "closed": {k: v.to_dict() for k, v in self.closed.items()}, "remedy_f1": dict(self.remedy_f1)}


def tail_f1(record: Any, tail_ids: Sequence[int]) -> np.ndarray:
    """F1 of each class of ``tail_ids`` in a record (or per-image stats), over all its images (NaN: undefined)."""
    stats = per_image_of(record)
    if stats is None:
        raise IncomparableError("the rarity gap needs per-image statistics (a reported record, or its "
                                "per_image.npz is missing)")
    return _point_f1(stats)[list(tail_ids)]


def _share(remedy: np.ndarray, longtail: np.ndarray, control: np.ndarray) -> np.ndarray:
    gap = control - longtail
    return np.divide(remedy - longtail, gap, out=np.full(np.shape(gap), np.nan), where=gap > 0)


def _estimate(point: float, samples: np.ndarray, confidence: float) -> Estimate:
    lo, hi = _percentile_ci(samples.reshape(-1, 1), confidence)
    return Estimate(float(point), float(lo[0]), float(hi[0]))


def rarity_gap(control: Any, longtail: Any, remedies: Mapping[str, Any], tail_ids: Sequence[int],
               class_names: Sequence[str], *, bound: float = RESOLUTION_BOUND_F1, n_resamples: int = 1000,
               confidence: float = 0.95, seed: int = 0, chunk_size: int = 250) -> list[GapRow]:
    """One :class:`GapRow` per tail class, then the tail-mean row (see module docstring).

    ``control``, ``longtail`` and each of ``remedies`` (label -> record): result records (or
    per-image stats) on the same test images."""
    stats = {"control": _aligned_stats(longtail, control)[1], "longtail": _aligned_stats(longtail, control)[0]}
    for label, record in remedies.items():
        stats[label] = _aligned_stats(longtail, record)[1]
    tail = list(tail_ids)
    points = {k: _point_f1(s)[tail] for k, s in stats.items()}
    judged = [i for i, f in enumerate(points["control"]) if not np.isnan(f) and f >= bound]
    n = stats["longtail"].num_images
    draws: dict[str, list[np.ndarray]] = {k: [] for k in stats}
    for w in _resample_weights(n, n_resamples, np.random.default_rng(seed), chunk_size):
        for key, s in stats.items():
            f1 = _resampled_f1(s, w)[:, tail]  # R x T
            mean = group_mean_f1(f1, judged) if judged else np.full(len(f1), np.nan)
            draws[key].append(np.concatenate([f1, mean[:, None]], axis=1))  # R x (T + 1)
    samples = {k: np.concatenate(v) for k, v in draws.items()}
    for key, point in points.items():
        mean = float(group_mean_f1(point, judged)) if judged else math.nan
        points[key] = np.append(point, mean)
    rows = []
    for j, name in enumerate([class_names[i] for i in tail] + [TAIL_MEAN]):
        ctrl, lt = points["control"][j], points["longtail"][j]
        gap = _estimate(ctrl - lt, samples["control"][:, j] - samples["longtail"][:, j], confidence)
        closed = {label: _estimate(_share(points[label][j], lt, ctrl),
                                   _share(samples[label][:, j], samples["longtail"][:, j], samples["control"][:, j]),
                                   confidence) for label in remedies}
        bound_class = j < len(tail) and j not in judged
        rows.append(GapRow(name, float(ctrl), float(lt), gap, bound_class, closed,
                           {label: float(points[label][j]) for label in remedies}))
    return rows
