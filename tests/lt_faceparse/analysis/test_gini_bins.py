import math

import numpy as np
import pytest

from lt_faceparse.analysis.bins import assign_bins, f1_by_bin
from lt_faceparse.analysis.gini import gini


def test_gini_uniform_is_zero():
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0, abs=1e-12)
    assert gini(np.full(19, 0.3)) == pytest.approx(0.0, abs=1e-12)
    assert gini([0, 0, 0]) == 0.0


def test_gini_hand_computed():
    # sum_ij |xi - xj| = 8 over ordered pairs; 2 n^2 mean = 2 * 9 * 2 = 36
    assert gini([3, 1, 2]) == pytest.approx(8 / 36)
    # one class holds everything among n: (n - 1) / n
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)
    x = np.random.default_rng(0).random(11)
    brute = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert gini(x) == pytest.approx(brute)
    assert gini(x * 7.5) == pytest.approx(brute)  # scale invariant


def test_gini_rejects_bad_input():
    with pytest.raises(ValueError):
        gini([])
    with pytest.raises(ValueError):
        gini([1, -1])


def test_assign_bins_thresholds():
    assert assign_bins([1.0, 0.9, 0.899, 0.3, 0.29, 0.0]) == ["frequent", "frequent", "common", "common", "rare", "rare"]
    assert assign_bins([0.5, 0.2], {"rare_below": 0.6, "common_below": 0.8}) == ["rare", "rare"]
    with pytest.raises(ValueError):
        assign_bins([0.5], {"rare_below": 0.9, "common_below": 0.3})
    with pytest.raises(ValueError):
        assign_bins([1.5])


def test_f1_by_bin_foreground_and_undefined():
    f1 = {"background": 0.99, "skin": 0.9, "hair": 0.8, "hat": math.nan, "ear_r": 0.4}
    bins = {"frequent": ["background", "skin", "hair"], "common": [], "rare": ["hat", "ear_r"]}
    out = f1_by_bin(f1, bins, foreground=["skin", "hair", "hat", "ear_r"])
    assert out == {"frequent": pytest.approx(0.85), "common": None, "rare": pytest.approx(0.4)}
