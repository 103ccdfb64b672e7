import numpy as np
import pytest

from lt_faceparse.custom_taxonomy import taxonomy_from_names
from lt_faceparse.errors import IncomparableError
from lt_faceparse.metrics import PerImageStats, bootstrap_ci, paired_bootstrap

TAX = taxonomy_from_names("boot3", ["background", "skin", "earring"])


def _stats(n: int, seed: int, tail_presence: float = 0.05, quality: float = 0.8) -> PerImageStats:
    """Synthetic per-image counts: skin in every image, the earring in ~5% of images."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((n, 3), np.int64)
    gt[:, 0] = rng.integers(2000, 3000, n)
    gt[:, 1] = rng.integers(800, 1200, n)
    gt[:, 2] = np.where(rng.random(n) < tail_presence, rng.integers(5, 40, n), 0)
    hit = rng.uniform(quality - 0.2, min(quality + 0.2, 1.0), (n, 3))
    inter = np.floor(gt * hit).astype(np.int64)
    pred = inter + rng.integers(0, 30, (n, 3)) * (gt > 0)
    return PerImageStats(gt, pred, inter, np.arange(n), tuple(f"img{i}" for i in range(n)))


def test_point_estimate_is_the_pooled_f1_computed_by_hand():
    s = _stats(400, 0)
    ci = bootstrap_ci(s, TAX, n_resamples=50, seed=1)
    gt, pred, inter = (x.sum(0).astype(float) for x in (s.gt, s.pred, s.inter))
    by_hand = 2 * inter / (gt + pred)  # F1 = 2|G∩P| / (|G| + |P|) over all images' pixels
    np.testing.assert_allclose(ci.f1, by_hand, rtol=1e-12)
    assert ci.mean_f1 == pytest.approx(by_hand[1:].mean())  # foreground classes only
    assert ci.num_images == 400


def test_ci_contains_point_estimate_and_tail_is_wider():
    ci = bootstrap_ci(_stats(400, 0), TAX, n_resamples=500, seed=1)
    for c in (1, 2):
        assert ci.lower[c] <= ci.f1[c] <= ci.upper[c]
    assert ci.mean_f1_lower <= ci.mean_f1 <= ci.mean_f1_upper
    width = ci.upper - ci.lower
    assert width[2] > 3 * width[1]  # earring: few images -> wide interval
    assert ci.to_dict()["per_class"]["earring"]["upper"] == pytest.approx(ci.upper[2])


def test_ci_width_shrinks_with_more_images():
    small = bootstrap_ci(_stats(100, 3), TAX, n_resamples=400, seed=0)
    large = bootstrap_ci(_stats(1600, 3), TAX, n_resamples=400, seed=0)
    for c in (1, 2):
        assert (large.upper - large.lower)[c] < (small.upper - small.lower)[c]
    assert large.mean_f1_upper - large.mean_f1_lower < small.mean_f1_upper - small.mean_f1_lower


def test_seeded_and_reproducible():
    s = _stats(200, 5)
    a = bootstrap_ci(s, TAX, n_resamples=200, seed=7)
    b = bootstrap_ci(s, TAX, n_resamples=200, seed=7, chunk_size=33)  # memory chunking leaves results alone
    c = bootstrap_ci(s, TAX, n_resamples=200, seed=8)
    assert np.array_equal(a.lower, bootstrap_ci(s, TAX, n_resamples=200, seed=7).lower)
    assert a.n_resamples == 200 and a.num_images == 200
    assert not np.array_equal(a.lower, c.lower)
    assert np.array_equal(a.lower, b.lower) and np.array_equal(a.upper, b.upper)


def test_class_absent_from_a_resample_is_skipped_not_scored():
    s = _stats(60, 2, tail_presence=0.03)
    ci = bootstrap_ci(s, TAX, n_resamples=300, seed=0)
    assert 0 < ci.n_defined[2] < 300  # some resamples miss every earring image
    assert ci.n_defined[1] == 300


def test_paired_identical_records_give_p_one():
    s = _stats(300, 4)
    res = paired_bootstrap(s, s, TAX, n_resamples=300, seed=0)
    assert np.allclose(res.delta[1:], 0)
    assert np.allclose(res.p_value[1:], 1.0)
    assert res.mean_p_value == pytest.approx(1.0)
    assert np.allclose(res.lower[1:], 0) and np.allclose(res.upper[1:], 0)


def test_paired_detects_a_real_difference_and_aligns_rows():
    a = _stats(300, 4, quality=0.6)
    better = PerImageStats(a.gt, a.pred, np.minimum(a.gt, a.pred) - (np.minimum(a.gt, a.pred) - a.inter) // 4,
                           a.image_ids, a.names)
    shuffled = better.subset(np.random.default_rng(0).permutation(300))  # same images, other order
    res = paired_bootstrap(a, shuffled, TAX, n_resamples=400, seed=0)
    f1 = lambda x: 2 * x.inter.sum(0) / (x.gt.sum(0) + x.pred.sum(0))  # noqa: E731  (pooled, by hand)
    np.testing.assert_allclose(res.delta, f1(better) - f1(a), rtol=1e-12)
    assert res.mean_delta == pytest.approx((f1(better) - f1(a))[1:].mean())
    assert res.delta[1] > 0 and res.lower[1] > 0
    assert res.p_value[1] < 0.01
    frame = res.to_frame()
    assert frame["class_name"].tolist() == ["background", "skin", "earring", "mean_f1"]


def test_paired_requires_same_images():
    a, b = _stats(50, 0), _stats(51, 0)
    with pytest.raises(IncomparableError, match="same images"):
        paired_bootstrap(a, b, TAX, n_resamples=10)


def test_group_means_follow_the_mean_f1_rule():
    s = _stats(300, 6)
    fg = list(TAX.foreground_ids)
    ci = bootstrap_ci(s, TAX, n_resamples=300, seed=3, groups={"fg": fg, "tail": [2], "skin": [1]})
    # a group of all foreground classes is the mean F1, resample by resample
    assert ci.groups["fg"] == pytest.approx((ci.mean_f1, ci.mean_f1_lower, ci.mean_f1_upper))
    # a one-class group is that class
    assert ci.groups["tail"] == pytest.approx((ci.f1[2], ci.lower[2], ci.upper[2]))
    assert ci.to_dict()["groups"]["skin"]["upper"] == pytest.approx(ci.upper[1])
    assert "groups" not in bootstrap_ci(s, TAX, n_resamples=20).to_dict()  # records stay unchanged without groups


def test_group_mean_skips_undefined_classes():
    from lt_faceparse.metrics.groups import group_mean_f1

    f1 = np.array([[0.2, np.nan, 0.6], [np.nan, np.nan, np.nan]])
    assert group_mean_f1(f1, [0, 1, 2]).tolist()[0] == pytest.approx(0.4)
    assert np.isnan(group_mean_f1(f1, [0, 1, 2])[1])
    with pytest.raises(ValueError, match="class group"):
        bootstrap_ci(_stats(10, 0), TAX, n_resamples=5, groups={"bad": [7]})


def test_paired_group_deltas():
    a = _stats(300, 4, quality=0.6)
    better = PerImageStats(a.gt, a.pred, np.minimum(a.gt, a.pred) - (np.minimum(a.gt, a.pred) - a.inter) // 4,
                           a.image_ids, a.names)
    res = paired_bootstrap(a, better, TAX, n_resamples=400, seed=0, groups={"fg": [1, 2], "skin": [1]})
    fg, skin = res.groups["fg"], res.groups["skin"]
    assert (fg.delta, fg.lower, fg.upper, fg.p_value) == pytest.approx(
        (res.mean_delta, res.mean_lower, res.mean_upper, res.mean_p_value))
    assert (skin.delta, skin.lower, skin.upper, skin.p_value) == pytest.approx(
        (res.delta[1], res.lower[1], res.upper[1], res.p_value[1]))
    assert skin.significant and skin.delta > 0
    assert res.to_frame()["class_name"].tolist()[-2:] == ["group:fg", "group:skin"]
    same = paired_bootstrap(a, a, TAX, n_resamples=100, groups={"fg": [1, 2]})
    assert same.groups["fg"].p_value == pytest.approx(1.0) and not same.groups["fg"].significant
