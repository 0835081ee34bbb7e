"""Intervals: each checked against a published value or a hand computation, plus the properties users rely on."""

import math

import pytest

from obliviate import stats


def test_wilson_matches_the_formula():
    lo, hi = stats.wilson(3, 10)
    assert (round(lo, 3), round(hi, 3)) == (0.108, 0.603)
    assert stats.wilson(0, 0) == (0.0, 1.0)
    lo, hi = stats.wilson(0, 12)
    assert lo == 0.0 and hi == pytest.approx(1.96**2 / 12 / (1 + 1.96**2 / 12), rel=1e-3)  # 0.2425


def test_newcombe_independent_matches_newcombes_published_example():
    """Newcombe (1998, Stat Med 17:873), example (a): 56/70 vs 48/80, method 10 gives 0.0524 to 0.3339."""
    est = stats.newcombe_difference(56, 70, 48, 80)
    assert est.value == pytest.approx(0.2)
    assert (round(est.lo, 4), round(est.hi, 4)) == (0.0524, 0.3339)


def _pairs(a, b, c, d):
    """Paired outcomes with a (1,1), b (1,0), c (0,1), d (0,0) pairs."""
    return [1] * a + [1] * b + [0] * c + [0] * d, [1] * a + [0] * b + [1] * c + [0] * d


def test_newcombe_paired_by_hand():
    first, second = _pairs(12, 5, 2, 1)  # n = 20, p1 = 0.85, p2 = 0.70
    n, p1, p2 = 20, 17 / 20, 14 / 20
    l1, u1 = stats.wilson(17, 20)
    l2, u2 = stats.wilson(14, 20)
    cross = 12 * 1 - 5 * 2  # ad - bc = 2 <= n/2: phi* = 0 (continuity correction)
    assert cross <= n / 2
    lo = p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    est = stats.newcombe_paired_difference(first, second)
    assert (est.value, est.lo, est.hi) == pytest.approx((0.15, lo, hi))


def test_paired_interval_is_narrower_when_outcomes_agree():
    """Strongly correlated pairs (phi* > 0) narrow the interval compared with treating them as independent."""
    first, second = _pairs(30, 8, 0, 22)
    paired = stats.newcombe_paired_difference(first, second)
    independent = stats.newcombe_difference(sum(first), 60, sum(second), 60)
    assert paired.value == pytest.approx(independent.value)
    assert paired.hi - paired.lo < independent.hi - independent.lo
    assert paired.excludes(0)


def test_identical_models_cannot_be_told_apart():
    first, second = _pairs(5, 0, 0, 15)
    est = stats.newcombe_paired_difference(first, second)
    assert est.value == 0 and est.lo < 0 < est.hi and not est.excludes(0)


def test_bootstrap_is_seeded_and_covers_the_mean():
    values = [0.1, 0.4, 0.35, 0.8, 0.5, 0.2, 0.9, 0.05]
    a, b = stats.bootstrap_ci(values), stats.bootstrap_ci(values)
    assert a == b and a.lo < a.value < a.hi and a.n == 8
    assert stats.mean_ci([1, 0, 1, 1]) == stats.proportion(3, 4)  # 0/1 values: Wilson, not the bootstrap


def test_difference_chooses_the_right_interval():
    assert stats.difference([1, 0, 1], [0, 0, 1]) == stats.newcombe_difference(2, 3, 1, 3)
    assert stats.difference([1, 0, 1], [0, 0, 1], paired=True) == stats.newcombe_paired_difference([1, 0, 1], [0, 0, 1])
    est = stats.difference([0.5, 0.7, 0.9, 0.6], [0.1, 0.2, 0.3, 0.2])
    assert est.value == pytest.approx(0.475) and est.excludes(0)


def test_auc_counts_ties_as_half():
    assert stats.auc([2, 3], [1, 0]) == 1.0
    assert stats.auc([1], [1]) == 0.5
    assert stats.auc([1, 3], [2]) == 0.5
    est = stats.bootstrap_auc([3, 4, 5, 6, 7], [0, 1, 2, 3.5, 2.5])
    assert est.value == pytest.approx(24 / 25) and est.lo <= est.value <= est.hi


def test_smallest_detectable_difference_shrinks_with_n():
    assert stats.min_detectable_difference(60) == pytest.approx(2.8016 * math.sqrt(0.5 / 60), rel=1e-3)
    assert stats.min_detectable_difference(200) < stats.min_detectable_difference(60) < stats.min_detectable_difference(12)


def test_clustered_difference_by_hand_and_as_the_paired_t_interval():
    """Three draws of two facts: differences (1, 0), (0, 0), (1, 1); cluster sums 1, 0, 2 around 2 x 0.5 give a
    spread of 2, a variance of 3/2 x 2 / 36 and a half-width of t(0.975, 2) x sqrt(1/12) = 1.24207."""
    from scipy.stats import t

    est = stats.clustered_paired_difference([1, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0], ["a", "a", "b", "b", "c", "c"])
    assert est.value == pytest.approx(0.5) and est.n == 6
    assert (est.lo, est.hi) == pytest.approx((0.5 - 1.24207, 0.5 + 1.24207), abs=1e-5)
    first, second = [0.9, 0.4, 0.7, 0.2, 0.6], [0.5, 0.5, 0.1, 0.3, 0.2]
    alone = stats.clustered_paired_difference(first, second, range(5))  # each item its own cluster
    d = [a - b for a, b in zip(first, second)]
    mean = sum(d) / 5
    half = t.ppf(0.975, 4) * (sum((x - mean) ** 2 for x in d) / 4 / 5) ** 0.5
    assert (alone.lo, alone.hi) == pytest.approx((mean - half, mean + half))
    with pytest.raises(ValueError, match="at least 2 clusters"):
        stats.clustered_paired_difference([1, 0], [0, 0], ["a", "a"])
