"""Percentile-bootstrap confidence intervals over images, and a paired bootstrap test.

Images are the resampling unit (pixels of one image are not independent). A resample draws N images
with replacement; its split-level counts are ``weights (R x N) @ per-image counts (N x K)``, so R
resamples cost three matrix products (float64, chunked over R) instead of R passes over the data.
F1 is then recomputed from the pooled counts exactly as for the full split. A class present in few
images gets a wide interval, and resamples in which it is absent from both sides leave it undefined
(those resamples are skipped for that class and counted in ``n_defined``).

Both functions also take ``groups`` (name -> class ids, e.g. head / tail / a presence bin): the
group's score is the mean of its members' defined F1 (the same rule as the mean F1, over the group's
classes instead of the foreground), computed on every resample, so group means get intervals and
paired tests from the same resamples as the classes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from lt_faceparse.errors import IncomparableError
from lt_faceparse.metrics.groups import group_mean_f1
from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.metrics.scores import f1_from_counts, mean_f1_of
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy


def _resample_weights(n: int, n_resamples: int, rng: np.random.Generator, chunk_size: int) -> Iterator[np.ndarray]:
    """Chunks of the R x N matrix of how often each image is drawn (each row sums to N)."""
    for start in range(0, n_resamples, chunk_size):
        r = min(chunk_size, n_resamples - start)
        draws = rng.integers(0, n, size=(r, n))
        rows = np.arange(r)[:, None] * n
        yield np.bincount((rows + draws).ravel(), minlength=r * n).reshape(r, n).astype(np.float64)


def _resampled_f1(stats: PerImageStats, weights: np.ndarray) -> np.ndarray:
    """R x K per-class F1 of the resamples given by ``weights`` (R x N)."""
    gt = weights @ stats.gt.astype(np.float64)
    pred = weights @ stats.pred.astype(np.float64)
    inter = weights @ stats.inter.astype(np.float64)
    return f1_from_counts(gt, pred, inter)


def _point_f1(stats: PerImageStats) -> np.ndarray:
    return f1_from_counts(*stats.totals())


def _check_groups(groups: Mapping[str, Sequence[int]] | None, num_classes: int) -> dict[str, list[int]]:
    out = {}
    for name, ids in (groups or {}).items():
        ids = [int(i) for i in ids]
        if not ids or any(not 0 <= i < num_classes for i in ids):
            raise ValueError(f"class group {name!r} must list class ids in [0, {num_classes}), got {ids}")
        out[str(name)] = ids
    return out


def _group_samples(f1_r: np.ndarray, groups: Mapping[str, list[int]]) -> np.ndarray:
    """R x G group means of R x K resampled F1 (columns in ``groups`` order)."""
    if not groups:
        return np.zeros((f1_r.shape[0], 0))
    return np.stack([group_mean_f1(f1_r, ids) for ids in groups.values()], axis=1)


def _percentile_ci(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-column percentile interval of R x K samples, NaN resamples skipped (all-NaN -> NaN)."""
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        lo = np.nanpercentile(samples, 100 * alpha, axis=0)
        hi = np.nanpercentile(samples, 100 * (1 - alpha), axis=0)
    return lo, hi


def _check_args(n: int, n_resamples: int, confidence: float) -> None:
    if n < 1:
        raise ValueError("bootstrap needs at least one image")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


@dataclass(frozen=True)
class BootstrapCI:
    """Per-class F1 and mean-F1 intervals. Arrays are indexed by class id (K)."""

    class_names: tuple[str, ...]
    f1: np.ndarray  # K, point estimate on all images
    lower: np.ndarray  # K
    upper: np.ndarray  # K
    n_defined: np.ndarray  # K, resamples in which the class was defined
    mean_f1: float
    mean_f1_lower: float
    mean_f1_upper: float
    confidence: float
    n_resamples: int
    num_images: int
    seed: int
    # group name -> (mean F1 of the group's classes on all images, lower, upper); empty unless asked
    groups: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form stored as ``ResultRecord.ci``."""
        none = lambda v: None if np.isnan(v) else float(v)  # noqa: E731
        out = {
            "method": "percentile bootstrap over images (pooled counts per resample)",
            "confidence": self.confidence, "n_resamples": self.n_resamples, "seed": self.seed,
            "num_images": self.num_images,
            "per_class": {name: {"lower": none(lo), "upper": none(hi), "n_defined": int(nd)}
                          for name, lo, hi, nd in zip(self.class_names, self.lower, self.upper, self.n_defined)},
            "mean_f1": {"lower": none(self.mean_f1_lower), "upper": none(self.mean_f1_upper)},
        }
        if self.groups:
            out["groups"] = {name: {"f1": none(v), "lower": none(lo), "upper": none(hi)}
                             for name, (v, lo, hi) in self.groups.items()}
        return out

    def to_frame(self):
        import pandas as pd  # lazy: pandas (~0.4 s) only for table output

        return pd.DataFrame({"class_name": self.class_names, "f1": self.f1, "lower": self.lower,
                             "upper": self.upper, "n_defined": self.n_defined})


def bootstrap_ci(per_image_stats: PerImageStats, taxonomy: Taxonomy | str, *, n_resamples: int = 1000,
                 confidence: float = 0.95, seed: int = 0, chunk_size: int = 250,
                 groups: Mapping[str, Sequence[int]] | None = None) -> BootstrapCI:
    """95% (by default) percentile intervals over images for every per-class F1 and the mean F1
    (and the mean F1 of each class group in ``groups``: name -> class ids)."""
    taxonomy = get_taxonomy(taxonomy)
    stats = per_image_stats
    if stats.num_classes != taxonomy.num_classes:
        raise ValueError(f"per-image stats have {stats.num_classes} classes, taxonomy "
                         f"{taxonomy.name!r} has {taxonomy.num_classes}")
    _check_args(stats.num_images, n_resamples, confidence)
    groups = _check_groups(groups, stats.num_classes)
    rng = np.random.default_rng(seed)
    f1_r = np.concatenate([_resampled_f1(stats, w)
                           for w in _resample_weights(stats.num_images, n_resamples, rng, chunk_size)])
    mean_r = mean_f1_of(f1_r, taxonomy)
    lo, hi = _percentile_ci(f1_r, confidence)
    mlo, mhi = _percentile_ci(mean_r[:, None], confidence)
    f1 = _point_f1(stats)
    glo, ghi = _percentile_ci(_group_samples(f1_r, groups), confidence)
    point = _group_samples(f1[None], groups)[0]
    return BootstrapCI(
        class_names=tuple(taxonomy.names), f1=f1, lower=lo, upper=hi, n_defined=(~np.isnan(f1_r)).sum(0),
        mean_f1=float(mean_f1_of(f1, taxonomy)), mean_f1_lower=float(mlo[0]), mean_f1_upper=float(mhi[0]),
        confidence=confidence, n_resamples=n_resamples, num_images=stats.num_images, seed=seed,
        groups={name: (float(point[g]), float(glo[g]), float(ghi[g])) for g, name in enumerate(groups)},
    )


@dataclass(frozen=True)
class GroupDelta:
    """Δ of one class group's mean F1 (b - a): point value, percentile interval, two-sided p-value."""

    delta: float
    lower: float
    upper: float
    p_value: float

    @property
    def significant(self) -> bool:
        """The interval excludes 0."""
        return bool(self.lower > 0 or self.upper < 0)


@dataclass(frozen=True)
class PairedBootstrap:
    """ΔF1 = F1(b) - F1(a) per class (index = class id) and for the mean F1, with intervals and
    two-sided p-values for H0: ΔF1 = 0."""

    class_names: tuple[str, ...]
    delta: np.ndarray  # K
    lower: np.ndarray  # K
    upper: np.ndarray  # K
    p_value: np.ndarray  # K
    mean_delta: float
    mean_lower: float
    mean_upper: float
    mean_p_value: float
    confidence: float
    n_resamples: int
    num_images: int
    seed: int
    # group name -> GroupDelta (Δ of the group's mean F1); empty unless asked
    groups: dict[str, "GroupDelta"] = field(default_factory=dict)

    def to_frame(self):
        """One row per class, a ``mean_f1`` row, then one row per group (``group:<name>``)."""
        import pandas as pd  # lazy: pandas (~0.4 s) only for table output

        frame = pd.DataFrame({"class_name": self.class_names, "delta_f1": self.delta, "lower": self.lower,
                              "upper": self.upper, "p_value": self.p_value})
        mean = pd.DataFrame({"class_name": ["mean_f1", *(f"group:{g}" for g in self.groups)],
                             "delta_f1": [self.mean_delta, *(g.delta for g in self.groups.values())],
                             "lower": [self.mean_lower, *(g.lower for g in self.groups.values())],
                             "upper": [self.mean_upper, *(g.upper for g in self.groups.values())],
                             "p_value": [self.mean_p_value, *(g.p_value for g in self.groups.values())]})
        return pd.concat([frame, mean], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "paired percentile bootstrap over images; p = (1 + #{|Δ* - Δ| >= |Δ|}) / (R + 1)",
            "confidence": self.confidence, "n_resamples": self.n_resamples, "seed": self.seed,
            "num_images": self.num_images,
            "rows": self.to_frame().replace({np.nan: None}).to_dict(orient="records"),
        }


def _p_value(samples: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-value of H0: Δ = 0 from the null-centred resamples Δ* - Δ."""
    defined = ~np.isnan(samples)
    extreme = (np.abs(samples - observed) >= np.abs(observed) - 1e-12) & defined
    n = defined.sum(0)
    return np.where((n > 0) & ~np.isnan(observed), (1.0 + extreme.sum(0)) / (n + 1.0), np.nan)


def per_image_of(x: Any) -> PerImageStats | None:
    """The per-image stats of a record (None for reported records), or ``x`` itself when it is stats."""
    return x if isinstance(x, PerImageStats) else getattr(x, "per_image", None)


def _aligned_stats(a: Any, b: Any) -> tuple[PerImageStats, PerImageStats, str | None]:
    """Per-image stats of two records (or stats) on the same images, rows in the same order."""
    def stats_of(x: Any, which: str) -> PerImageStats:
        stats = per_image_of(x)
        if stats is None:
            raise IncomparableError(f"record {which} has no per-image statistics (a reported record, or "
                                    "its per_image.npz is missing); a paired test needs them")
        return stats

    sa, sb = stats_of(a, "a"), stats_of(b, "b")
    ta, tb = getattr(a, "taxonomy", None), getattr(b, "taxonomy", None)
    if ta is not None and tb is not None and ta != tb:
        raise IncomparableError(f"paired bootstrap: taxonomies differ ({ta!r} vs {tb!r})")
    if sa.num_classes != sb.num_classes:
        raise IncomparableError(f"paired bootstrap: {sa.num_classes} vs {sb.num_classes} classes")
    ka, kb = sa.key(), sb.key()
    if sa.num_images != sb.num_images or set(ka.tolist()) != set(kb.tolist()):
        only_a = sorted(set(ka.tolist()) - set(kb.tolist()))[:5]
        only_b = sorted(set(kb.tolist()) - set(ka.tolist()))[:5]
        raise IncomparableError(f"paired bootstrap needs the same images: {sa.num_images} vs {sb.num_images} "
                                f"images; only in a: {only_a}, only in b: {only_b}")
    order_b = np.argsort(kb, kind="stable")[np.argsort(np.argsort(ka, kind="stable"), kind="stable")]
    return sa, sb.subset(order_b), ta


def paired_bootstrap(record_a: Any, record_b: Any, taxonomy: Taxonomy | str | None = None, *,
                     n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
                     chunk_size: int = 250, groups: Mapping[str, Sequence[int]] | None = None) -> PairedBootstrap:
    """Paired test of ``record_b`` against ``record_a`` (ResultRecords or PerImageStats) on the same
    images: both are scored on the same resamples; per class ΔF1 = F1(b) - F1(a), its percentile
    interval and a two-sided p-value; the same for the mean F1 and for the mean F1 of each class
    group in ``groups`` (name -> class ids, e.g. head / tail). Raises :class:`IncomparableError`
    unless the image sets (names, else ids) and taxonomies match."""
    sa, sb, tax_name = _aligned_stats(record_a, record_b)
    taxonomy = get_taxonomy(taxonomy if taxonomy is not None else tax_name)
    if taxonomy.num_classes != sa.num_classes:
        raise ValueError(f"taxonomy {taxonomy.name!r} has {taxonomy.num_classes} classes, stats have {sa.num_classes}")
    _check_args(sa.num_images, n_resamples, confidence)
    groups = _check_groups(groups, sa.num_classes)
    rng = np.random.default_rng(seed)
    deltas, mean_deltas, group_deltas = [], [], []
    for w in _resample_weights(sa.num_images, n_resamples, rng, chunk_size):
        fa, fb = _resampled_f1(sa, w), _resampled_f1(sb, w)
        deltas.append(fb - fa)
        mean_deltas.append(mean_f1_of(fb, taxonomy) - mean_f1_of(fa, taxonomy))
        group_deltas.append(_group_samples(fb, groups) - _group_samples(fa, groups))
    d_r, m_r, g_r = np.concatenate(deltas), np.concatenate(mean_deltas)[:, None], np.concatenate(group_deltas)
    fa, fb = _point_f1(sa), _point_f1(sb)
    delta = fb - fa
    mean_delta = np.array([mean_f1_of(fb, taxonomy) - mean_f1_of(fa, taxonomy)])
    group_delta = _group_samples(fb[None], groups)[0] - _group_samples(fa[None], groups)[0]
    lo, hi = _percentile_ci(d_r, confidence)
    mlo, mhi = _percentile_ci(m_r, confidence)
    glo, ghi = _percentile_ci(g_r, confidence)
    gp = _p_value(g_r, group_delta)
    return PairedBootstrap(
        class_names=tuple(taxonomy.names), delta=delta, lower=lo, upper=hi, p_value=_p_value(d_r, delta),
        mean_delta=float(mean_delta[0]), mean_lower=float(mlo[0]), mean_upper=float(mhi[0]),
        mean_p_value=float(_p_value(m_r, mean_delta)[0]), confidence=confidence, n_resamples=n_resamples,
        num_images=sa.num_images, seed=seed,
        groups={name: GroupDelta(float(group_delta[g]), float(glo[g]), float(ghi[g]), float(gp[g]))
                for g, name in enumerate(groups)},
    )


@dataclass(frozen=True)
class SubsetDelta:
    """Δ of the mean F1 over a set of classes (the defined ones, as in the tables' head/tail means):
    point estimate, percentile interval and two-sided p-value of a paired bootstrap."""

    name: str
    class_ids: tuple[int, ...]
    delta: float
    lower: float
    upper: float
    p_value: float
    n_resamples: int
    num_images: int


def _subset_mean(f1: np.ndarray, ids: list[int]) -> np.ndarray:
    """Mean of the defined F1 values over the columns ``ids`` of ``... x K`` (NaN if none defined)."""
    sub = np.asarray(f1)[..., ids]
    n = (~np.isnan(sub)).sum(-1)
    return np.divide(np.nansum(sub, -1), n, out=np.full(n.shape, np.nan), where=n > 0)


def paired_bootstrap_subsets(record_a: Any, record_b: Any, class_sets: dict[str, list[int]], *,
                             n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
                             chunk_size: int = 250) -> dict[str, SubsetDelta]:
    """Paired test of the mean F1 over each class set (e.g. head and tail) of ``record_b`` against
    ``record_a`` on the same images, with the same resampling as :func:`paired_bootstrap`
    (so with the same ``seed`` the two share their resamples)."""
    sa, sb, _ = _aligned_stats(record_a, record_b)
    _check_args(sa.num_images, n_resamples, confidence)
    for name, ids in class_sets.items():
        if not ids or any(not 0 <= i < sa.num_classes for i in ids):
            raise ValueError(f"class set {name!r}: ids {ids} outside 0..{sa.num_classes - 1}")
    rng = np.random.default_rng(seed)
    samples: dict[str, list[np.ndarray]] = {name: [] for name in class_sets}
    for w in _resample_weights(sa.num_images, n_resamples, rng, chunk_size):
        fa, fb = _resampled_f1(sa, w), _resampled_f1(sb, w)
        for name, ids in class_sets.items():
            samples[name].append(_subset_mean(fb, ids) - _subset_mean(fa, ids))
    fa, fb = _point_f1(sa), _point_f1(sb)
    out = {}
    for name, ids in class_sets.items():
        observed = np.array([_subset_mean(fb, ids) - _subset_mean(fa, ids)])
        resampled = np.concatenate(samples[name])[:, None]
        lo, hi = _percentile_ci(resampled, confidence)
        out[name] = SubsetDelta(name, tuple(ids), float(observed[0]), float(lo[0]), float(hi[0]),
                                float(_p_value(resampled, observed)[0]), n_resamples, sa.num_images)
    return out
