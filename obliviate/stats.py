"""Intervals for every number a user reads: proportions, means over facts, differences between models, AUCs.

- `wilson`: 95 % Wilson score interval of a proportion (right when n is small or p is near 0 or 1).
- `newcombe_difference`: interval of p1 - p2 for two independent proportions (Newcombe 1998, method 10), e.g.
  an attack's rate on forget facts minus its rate on never-known holdout facts.
- `newcombe_paired_difference`: the same for paired 0/1 outcomes on the same facts (Newcombe 1998, paired
  method 10), e.g. an attack on the unlearned model minus the same attack on the exact-unlearning reference.
- `bootstrap_ci`, `paired_bootstrap_difference`, `bootstrap_auc`: percentile bootstrap over facts for
  everything that is not a proportion (probabilities, ROUGE, truth ratios, AUCs). Seeded: the same input
  always gives the same interval.
- `clustered_paired_difference`: a paired difference whose items come in clusters (the facts of one draw are
  unlearned in one run): a cluster-robust interval with as many degrees of freedom as clusters allow.
- `min_detectable_difference`: the smallest difference between two proportions that n facts per side detect
  with 80 % power at the 5 % level; the report prints it so a user knows what "no difference" can mean.

Every interval is two-sided 95 %. Results travel as `Estimate` dicts: {"value", "ci": [lo, hi], "n"}.

>>> [round(x, 3) for x in wilson(3, 10)]
[0.108, 0.603]
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95 %
Z80_POWER = 0.8416212335729143  # one-sided 80 % power
N_BOOT = 2000


@dataclass(frozen=True)
class Estimate:
    """A number with its 95 % interval and the count it rests on."""

    value: float
    lo: float
    hi: float
    n: int

    def to_dict(self) -> dict:
        return {"value": self.value, "ci": [self.lo, self.hi], "n": self.n}

    def excludes(self, x: float = 0.0) -> bool:
        """True when x lies outside the interval (a difference 'is there' when its interval excludes 0)."""
        return x < self.lo or x > self.hi


def wilson(k: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (0.0 if k <= 0 else max(0.0, centre - half)), (1.0 if k >= n else min(1.0, centre + half))


def proportion(k: float, n: int) -> Estimate:
    """k / n with its Wilson interval."""
    lo, hi = wilson(k, n)
    return Estimate(k / n if n else 0.0, lo, hi, n)


def newcombe_difference(k1: float, n1: int, k2: float, n2: int) -> Estimate:
    """p1 - p2 of two independent samples with the hybrid score interval (Newcombe 1998, method 10)."""
    p1, p2 = (k1 / n1 if n1 else 0.0), (k2 / n2 if n2 else 0.0)
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    diff = p1 - p2
    lo = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Estimate(diff, max(-1.0, lo), min(1.0, hi), min(n1, n2))


def newcombe_paired_difference(first: Sequence[bool], second: Sequence[bool]) -> Estimate:
    """mean(first) - mean(second) for paired 0/1 outcomes on the same items (Newcombe 1998, paired method 10)."""
    if len(first) != len(second):
        raise ValueError(f"paired outcomes need equal lengths, got {len(first)} and {len(second)}")
    n = len(first)
    if n == 0:
        return Estimate(0.0, -1.0, 1.0, 0)
    a = sum(1 for x, y in zip(first, second) if x and y)
    b = sum(1 for x, y in zip(first, second) if x and not y)
    c = sum(1 for x, y in zip(first, second) if not x and y)
    d = n - a - b - c
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n)
    l2, u2 = wilson(a + c, n)
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c  # Newcombe's phi*: the correlation with a continuity correction towards 0
    corrected = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    phi = corrected / math.sqrt(denom) if denom else 0.0
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    epsilon = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    diff = p1 - p2
    return Estimate(diff, max(-1.0, diff - delta), min(1.0, diff + epsilon), n)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    k = len(samples)
    return samples[int(0.025 * (k - 1))], samples[int(math.ceil(0.975 * (k - 1)))]


def bootstrap_ci(values: Sequence[float], statistic: Callable[[Sequence[float]], float] = _mean,
                 n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """`statistic` of `values` with a percentile bootstrap interval (resampling the values, i.e. the facts)."""
    values = list(values)
    if not values:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = random.Random(f"bootstrap-{seed}")
    n = len(values)
    samples = [statistic([values[rng.randrange(n)] for _ in range(n)]) for _ in range(n_boot)]
    lo, hi = _percentiles(samples)
    return Estimate(statistic(values), lo, hi, n)


def mean_ci(values: Sequence[float]) -> Estimate:
    """Mean with an interval: Wilson when every value is 0 or 1 (a proportion), else a bootstrap over values."""
    values = list(values)
    if not values:
        raise ValueError("mean_ci needs at least one value")
    if all(v in (0, 1) for v in values):
        return proportion(sum(values), len(values))
    return bootstrap_ci(values)


def paired_bootstrap_difference(first: Sequence[float], second: Sequence[float], n_boot: int = N_BOOT,
                                seed: int = 0) -> Estimate:
    """mean(first - second) over paired items (two models on the same facts), bootstrap over items."""
    if len(first) != len(second):
        raise ValueError(f"paired values need equal lengths, got {len(first)} and {len(second)}")
    return bootstrap_ci([x - y for x, y in zip(first, second)], n_boot=n_boot, seed=seed)


def stratified_bootstrap(first: Sequence, second: Sequence, statistic: Callable[[list, list], float],
                         n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """`statistic(first, second)` with a percentile interval from resampling each group on its own (the facts of
    two splits, e.g. forget and holdout). Items may be tuples, so a statistic can compare two models on the same
    resampled facts (paired)."""
    first, second = list(first), list(second)
    if not first or not second:
        raise ValueError("stratified_bootstrap needs items in both groups")
    rng = random.Random(f"stratified-{seed}")
    samples = [statistic([first[rng.randrange(len(first))] for _ in first],
                         [second[rng.randrange(len(second))] for _ in second]) for _ in range(n_boot)]
    lo, hi = _percentiles(samples)
    return Estimate(statistic(first, second), lo, hi, min(len(first), len(second)))


def bootstrap_auc(member: Sequence[float], nonmember: Sequence[float], n_boot: int = N_BOOT,
                  seed: int = 0) -> Estimate:
    """ROC AUC of member vs non-member scores (higher = member) with a stratified bootstrap interval."""
    return stratified_bootstrap(member, nonmember, auc, n_boot, seed)


def auc(member: Sequence[float], nonmember: Sequence[float]) -> float:
    """ROC AUC: the probability that a random member scores above a random non-member (ties count half)."""
    ranked = sorted([(s, 1) for s in member] + [(s, 0) for s in nonmember])
    rank_sum, i = 0.0, 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mean_rank = (i + 1 + j) / 2
        rank_sum += mean_rank * sum(label for _, label in ranked[i:j])
        i = j
    n1, n0 = len(member), len(nonmember)
    return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0)


def min_detectable_difference(n1: int, n2: int | None = None, p: float = 0.5) -> float:
    """Smallest difference of two proportions around `p` that n1 vs n2 items detect (80 % power, 5 % level)."""
    n2 = n1 if n2 is None else n2
    if n1 <= 0 or n2 <= 0:
        return 1.0
    return min(1.0, (Z95 + Z80_POWER) * math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2)))


def cannot_tell_apart(first: Estimate, second: Estimate) -> bool:
    """True when two estimates' intervals overlap (a conservative reading; prefer a paired difference)."""
    return first.lo <= second.hi and second.lo <= first.hi


def bootstrap_difference(first: Sequence[float], second: Sequence[float], n_boot: int = N_BOOT,
                         seed: int = 0) -> Estimate:
    """mean(first) - mean(second) of two independent samples, each resampled on its own."""
    first, second = list(first), list(second)
    if not first or not second:
        raise ValueError("bootstrap_difference needs two non-empty samples")
    rng = random.Random(f"difference-{seed}")
    samples = [_mean([first[rng.randrange(len(first))] for _ in first])
               - _mean([second[rng.randrange(len(second))] for _ in second]) for _ in range(n_boot)]
    lo, hi = _percentiles(samples)
    return Estimate(_mean(first) - _mean(second), lo, hi, min(len(first), len(second)))


def clustered_paired_difference(first: Sequence[float], second: Sequence[float], clusters: Sequence) -> Estimate:
    """mean(first) - mean(second) over paired items that come in clusters, e.g. facts unlearned together in one
    run (one draw), which share that run's luck: a cluster-robust interval (the CR1 variance of the mean
    difference, Cameron & Miller 2015, with a t quantile on G - 1 degrees of freedom for G clusters). With each
    item its own cluster it is the paired t interval; with a few clusters it is as wide as a few runs warrant."""
    from scipy.stats import t

    if not len(first) == len(second) == len(clusters):
        raise ValueError("clustered_paired_difference needs one first, one second and one cluster per item")
    by_cluster: dict = {}
    for a, b, c in zip(first, second, clusters):
        by_cluster.setdefault(c, []).append(a - b)
    g, n = len(by_cluster), len(first)
    if g < 2:
        raise ValueError(f"a cluster-robust interval needs at least 2 clusters, got {g}")
    mean = sum(map(sum, by_cluster.values())) / n
    spread = sum((sum(d) - len(d) * mean) ** 2 for d in by_cluster.values())
    half = t.ppf(0.975, g - 1) * math.sqrt(g / (g - 1) * spread) / n
    return Estimate(mean, mean - half, mean + half, n)


def difference(first: Sequence[float], second: Sequence[float], paired: bool = False) -> Estimate:
    """mean(first) - mean(second) with its interval: Newcombe's score intervals for 0/1 values (paired when the
    two samples are the same items under two models), a bootstrap over items otherwise."""
    first, second = list(first), list(second)
    binary = all(v in (0, 1) for v in (*first, *second))
    if paired:
        return newcombe_paired_difference(first, second) if binary else paired_bootstrap_difference(first, second)
    if binary:
        return newcombe_difference(sum(first), len(first), sum(second), len(second))
    return bootstrap_difference(first, second)
