"""Per-class loss weights from class counts (Cui et al., CVPR 2019), normalised so that Σ_c w_c = C.

- effective number: E_c = (1 − β^{n_c}) / (1 − β), w_c ∝ 1 / E_c = (1 − β) / (1 − β^{n_c});
  β → 1 gives inverse frequency, β = 0 no weighting (every w_c = 1);
- inverse frequency: w_c ∝ 1 / n_c.

Counts are raised to at least 1 (a class never seen would otherwise get an infinite weight).
"""

from __future__ import annotations

import numpy as np


def _normalised(raw: np.ndarray) -> np.ndarray:
    return raw * (raw.size / raw.sum())


def effective_number_weights(counts: np.ndarray, beta: float) -> np.ndarray:
    """K weights ∝ (1 − β) / (1 − β^{n_c}), Σ w = K (``counts``: n_c, any unit)."""
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    # 1 − β^n computed as −expm1(n log β): exact where β^n is close to 1 (small β ... large n both fine)
    effective = -np.expm1(n * np.log(beta)) / (1.0 - beta) if beta > 0 else np.ones_like(n)
    return _normalised(1.0 / effective)


def inverse_frequency_weights(counts: np.ndarray) -> np.ndarray:
    """K weights ∝ 1 / n_c, Σ w = K."""
    return _normalised(1.0 / np.maximum(np.asarray(counts, dtype=np.float64), 1.0))


def class_weights(kind: str, counts: np.ndarray, beta: float = 0.999) -> np.ndarray:
    """``kind``: ``inverse_freq`` | ``effective_number`` (| ``none``: all ones)."""
    if kind == "effective_number":
        return effective_number_weights(counts, beta)
    if kind == "inverse_freq":
        return inverse_frequency_weights(counts)
    if kind == "none":
        return np.ones(len(counts))
    raise ValueError(f"unknown class weighting {kind!r} (inverse_freq, effective_number, none)")
