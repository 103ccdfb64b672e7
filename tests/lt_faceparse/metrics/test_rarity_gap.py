"""The rarity gap and the share of it a remedy closes: known answers on hand-made per-image counts."""

from __future__ import annotations

import numpy as np
import pytest

from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.errors import IncomparableError
from lt_faceparse.metrics.rarity_gap import TAIL_MEAN, rarity_gap, tail_f1

NAMES = ("background", "tail_a", "tail_b")
N = 40


def _stats(hit_a: float, hit_b: float) -> PerImageStats:
    """Every image holds 10 pixels of each class; the model finds ``hit`` of the tail pixels, no false
    positives on the tails (F1 = 2h / (1 + h))."""
    gt = np.full((N, 3), 10, dtype=np.int64)
    inter = np.stack([np.full(N, 10), np.full(N, round(10 * hit_a)), np.full(N, round(10 * hit_b))], 1)
    pred = inter.copy()
    pred[:, 0] = 10 + (20 - inter[:, 1:].sum(1))  # missed tail pixels predicted as background
    inter = np.minimum(inter, np.minimum(gt, pred))
    return PerImageStats(gt=gt, pred=pred, inter=inter.astype(np.int64), image_ids=np.arange(N))


def _f1(h: float) -> float:
    return 2 * h / (1 + h)


def test_gap_share_and_resolution_bound_have_their_known_values():
    control, longtail = _stats(0.8, 0.2), _stats(0.2, 0.1)
    remedy = _stats(0.5, 0.1)
    rows = rarity_gap(control, longtail, {"remedy": remedy}, [1, 2], NAMES, n_resamples=50)
    a, b, mean = rows
    assert a.name == "tail_a" and mean.name == TAIL_MEAN
    assert a.gap.value == pytest.approx(_f1(0.8) - _f1(0.2))
    assert a.closed["remedy"].value == pytest.approx((_f1(0.5) - _f1(0.2)) / (_f1(0.8) - _f1(0.2)))
    assert not a.resolution_bound
    assert b.resolution_bound  # control F1 of tail_b = 0.33 < 0.5
    assert mean.gap.value == pytest.approx(a.gap.value)  # the mean leaves the resolution-bound class out
    # identical images: every resample gives the same value, so the interval is the point
    assert a.gap.lower == pytest.approx(a.gap.value) and a.gap.upper == pytest.approx(a.gap.value)


def test_a_remedy_equal_to_the_control_closes_the_whole_gap_and_plain_closes_none():
    control, longtail = _stats(0.9, 0.9), _stats(0.3, 0.1)
    rows = rarity_gap(control, longtail, {"same": control, "plain": longtail}, [1, 2], NAMES, n_resamples=20)
    for row in rows:
        assert row.closed["same"].value == pytest.approx(1.0)
        assert row.closed["plain"].value == pytest.approx(0.0)


def test_no_gap_leaves_the_share_undefined():
    same = _stats(0.6, 0.6)
    rows = rarity_gap(same, same, {"r": _stats(0.7, 0.7)}, [1, 2], NAMES, n_resamples=20)
    assert np.isnan(rows[0].closed["r"].value) and rows[0].gap.value == 0.0


def test_tail_f1_reads_the_per_image_counts_and_needs_them():
    assert np.allclose(tail_f1(_stats(0.6, 0.3), [2, 1]), [_f1(0.3), _f1(0.6)])

    class Reported:  # a published row: no per-image statistics
        per_image = None

    with pytest.raises(IncomparableError, match="per-image statistics"):
        tail_f1(Reported(), [1])
