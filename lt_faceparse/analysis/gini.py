"""Gini coefficient of a class distribution (0 = perfectly balanced, -> 1 = one class holds all)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def gini(values: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of non-negative values: mean absolute difference over twice the mean,
    ``sum_ij |x_i - x_j| / (2 n^2 mean(x))``, computed in O(n log n) from the sorted values as
    ``2 sum_i i x_(i) / (n sum x) - (n + 1) / n`` (i = 1..n ascending).

    Uniform values give 0; one non-zero value among n gives (n - 1) / n. All-zero input gives 0
    (nothing to be unequal about); an empty or negative input is an error."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size == 0:
        raise ValueError("gini of an empty sequence")
    if np.isnan(x).any() or (x < 0).any():
        raise ValueError(f"gini needs non-negative values, got {x.tolist()[:10]}")
    total = x.sum()
    if total == 0:
        return 0.0
    n = x.size
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(2.0 * (ranks * x).sum() / (n * total) - (n + 1.0) / n)
