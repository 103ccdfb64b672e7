"""Frequency bins (rare / common / frequent) and F1 summarised per bin (F1@r/c/f).

Bins follow the presence probability of a class: the fraction of images in which it appears.
Defaults: rare < 0.30 <= common < 0.90 <= frequent. Rationale: in CelebAMask-HQ every facial part is
visible in nearly all images (SegFace Figure 1: about 1.0), so 0.90 keeps the head classes together
while ears, hidden by hair in a sizeable share of images, fall into "common"; 0.30 sits above the
earring's 0.26 and below the typical ear presence, isolating the accessories the paper calls the
tail. Presence probability (not an absolute image count as in LVIS) makes the bins comparable across
datasets of different sizes and splits. Thresholds are configurable everywhere bins are assigned.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

BIN_NAMES = ("rare", "common", "frequent")
DEFAULT_THRESHOLDS: dict[str, float] = {"rare_below": 0.30, "common_below": 0.90}


def check_thresholds(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    t = dict(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    if set(t) != set(DEFAULT_THRESHOLDS):
        raise ValueError(f"bin thresholds need exactly the keys {sorted(DEFAULT_THRESHOLDS)}, got {sorted(t)}")
    if not 0.0 <= t["rare_below"] <= t["common_below"] <= 1.0:
        raise ValueError(f"bin thresholds must satisfy 0 <= rare_below <= common_below <= 1, got {t}")
    return t


def assign_bins(presence: Sequence[float] | np.ndarray, thresholds: Mapping[str, float] | None = None) -> list[str]:
    """Bin name per class from its presence probability (``rare`` if p < rare_below, ``common`` if
    p < common_below, else ``frequent``)."""
    t = check_thresholds(thresholds)
    p = np.asarray(presence, dtype=np.float64)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"presence probabilities must lie in [0, 1], got {p.tolist()}")
    return [BIN_NAMES[0] if v < t["rare_below"] else BIN_NAMES[1] if v < t["common_below"] else BIN_NAMES[2]
            for v in p]


def f1_by_bin(per_class_f1: Mapping[str, float], bins: Mapping[str, Sequence[str]],
              foreground: Sequence[str]) -> dict[str, float | None]:
    """Mean of the defined F1 of the foreground classes of each bin (None for an empty bin or one
    whose classes are all undefined)."""
    fg = set(foreground)
    out: dict[str, float | None] = {}
    for name, members in bins.items():
        unknown = [m for m in members if m not in per_class_f1]
        if unknown:
            raise KeyError(f"bin {name!r} names classes without a score: {unknown}")
        vals = [per_class_f1[m] for m in members if m in fg]
        vals = [v for v in vals if v is not None and not np.isnan(v)]
        out[name] = float(np.mean(vals)) if vals else None
    return out
