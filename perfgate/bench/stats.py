"""The gate's statistics (pure: no I/O, no clock, no randomness).

The unit of evidence is a *run*, not a request: requests within one run share the machine's
state at that moment (a neighbour's build, the CPU's clock), so treating 100,000 requests as
independent makes every drift look significant. A metric is one value per run (perfgate's
p50, or its p50 over its peers' in the same run), compared on a log scale, where a 30 %
slowdown is the same shift whatever the scenario's scale.

The question asked of each metric is one-sided: *is the current slower than the baseline by
more than THRESHOLD?* (H0: shift <= log THRESHOLD). It is answered by the Mann-Whitney rank
test of the shifted samples, whose null distribution is exact for any noise distribution as
long as the runs are exchangeable: no normality, no bootstrap (a percentile bootstrap of a
median over 7 runs is both coarse and too narrow), and one wild run moves a rank by one,
not the answer by its size. The point estimate is the matching Hodges-Lehmann shift (the
median of all current-minus-baseline differences), and the interval is the test inverted,
so the two never disagree.

THRESHOLD is not 1.0: a baseline is measured on another day than the result it judges, and
a 10 % margin absorbs the drift of a machine between the two (its clock, its neighbours, a
dependency's patch release) that no test on the runs themselves can see. Holm's step-down
correction over every gated metric of every scenario keeps the chance of any false alarm
per gate at ALPHA, without assuming the metrics (p50 and p90 of one scenario are strongly
correlated) to be independent.
"""

from __future__ import annotations

import enum
import functools
import math
import statistics
from collections.abc import Sequence

import attrs

#: H0 of every metric: "worse by at most this ratio". Confirmed past it: a regression.
THRESHOLD = 1.10
#: The regression the gate is sized to catch (the power check injects it).
FAIL_RATIO = 1.30
#: Level of each metric's one-sided test.
ALPHA = 0.05
#: With fewer runs than this on either side no rank test can say anything.
MIN_RUNS = 3


class Verdict(enum.StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@functools.cache
def _rank_sum_tail(m: int, n: int) -> tuple[float, ...]:
    """``tail[u] = P(U >= u)`` for the Mann-Whitney U of samples of sizes m and n under H0.

    The counts of U are the coefficients of the Gaussian binomial coefficient
    ``prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i)``, computed exactly in integers.
    """
    size = m * n + 1
    coeffs = [0] * size
    coeffs[0] = 1
    for i in range(1, m + 1):
        for k in range(size - 1, n + i - 1, -1):  # times (1 - q^(n+i))
            coeffs[k] -= coeffs[k - n - i]
        for k in range(i, size):  # divided by (1 - q^i)
            coeffs[k] += coeffs[k - i]
    total = math.comb(m + n, m)
    tail = [0.0] * (size + 1)
    running = 0
    for u in range(size - 1, -1, -1):
        running += coeffs[u]
        tail[u] = running / total
    return tuple(tail)


def p_shift_at_most(baseline: Sequence[float], current: Sequence[float], shift: float) -> float:
    """Exact one-sided p-value of H0 "current exceeds baseline by at most ``shift``".

    U counts the pairs where ``current - shift`` is strictly above ``baseline`` (a tie
    counts as not worse, so ties can only make the answer more cautious); the p-value is
    P(U >= observed) under exchangeability. Never 0: with m and n runs it is at least
    1 / C(m+n, m), which is how much certainty that many runs can carry.
    """
    if not baseline or not current:
        raise ValueError("both sides need at least one run")
    u = sum(1 for c in current for b in baseline if c - shift > b)
    return _rank_sum_tail(len(baseline), len(current))[u]


def shift_estimate(baseline: Sequence[float], current: Sequence[float]) -> float:
    """Hodges-Lehmann: the median of every ``current - baseline`` difference."""
    return statistics.median(c - b for c in current for b in baseline)


def shift_interval(
    baseline: Sequence[float], current: Sequence[float], confidence: float = 0.95
) -> tuple[float, float]:
    """The two-sided ``confidence`` interval of the shift: the rank test inverted.

    The lower end is the k-th smallest pairwise difference, k the largest for which
    P(U < k) <= (1 - confidence) / 2; the upper end mirrors it. With too few runs to reach
    that confidence the interval is the whole range of the differences.
    """
    diffs = sorted(c - b for c in current for b in baseline)
    tail = _rank_sum_tail(len(baseline), len(current))
    half = (1.0 - confidence) / 2.0
    # P(U <= t) = P(U >= mn - t) by symmetry
    mn = len(diffs)
    k = 1
    while k < mn and tail[mn - k] <= half:  # P(U <= k - 1) <= half
        k += 1
    return diffs[k - 1], diffs[mn - k]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (same order as given), monotone and capped at 1.

    Rejecting every hypothesis whose adjusted p-value is ``<= alpha`` controls the
    family-wise error rate at ``alpha``.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@attrs.frozen
class Comparison:
    """One metric of one scenario, baseline vs current.

    ``ratio`` is current/baseline as the Hodges-Lehmann shift of the runs' logarithms, with
    its 95 % rank interval. ``worseness`` orients it so that > 1 is worse (latency up,
    throughput down). ``p_worse`` is the exact p-value of H0 "worseness <= THRESHOLD".
    ``gated``: a confirmed move fails the gate; otherwise the metric is reported and can
    only warn. ``basis`` says what was compared: ``"absolute"`` (milliseconds,
    requests/s) or ``"peers"`` (perfgate/peer).
    """

    scenario: str
    metric: str
    higher_is_worse: bool
    baseline_median: float
    current_median: float
    ratio: float
    ci_low: float
    ci_high: float
    p_worse: float
    basis: str = "absolute"
    gated: bool = True

    @property
    def worseness(self) -> float:
        return self.ratio if self.higher_is_worse else 1.0 / self.ratio

    @property
    def change_pct(self) -> float:
        return (self.ratio - 1.0) * 100.0


def compare(
    scenario: str,
    metric: str,
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    higher_is_worse: bool,
    threshold: float = THRESHOLD,
    basis: str = "absolute",
    gated: bool = True,
) -> Comparison:
    """Compare one metric's runs. Raises ``ValueError`` on empty input or non-positive values."""
    if not baseline or not current:
        raise ValueError(f"{scenario}.{metric}: both sides need at least one run")
    if any(v <= 0 for v in baseline) or any(v <= 0 for v in current):
        raise ValueError(f"{scenario}.{metric}: values must be positive")
    sign = 1.0 if higher_is_worse else -1.0
    # oriented logs: larger is worse on both sides
    base = [sign * math.log(v) for v in baseline]
    cur = [sign * math.log(v) for v in current]
    lo, hi = shift_interval(base, cur)
    ends = sorted((math.exp(sign * lo), math.exp(sign * hi)))
    return Comparison(
        scenario=scenario,
        metric=metric,
        higher_is_worse=higher_is_worse,
        baseline_median=statistics.median(baseline),
        current_median=statistics.median(current),
        ratio=math.exp(sign * shift_estimate(base, cur)),
        ci_low=ends[0],
        ci_high=ends[1],
        p_worse=p_shift_at_most(base, cur, math.log(threshold)),
        basis=basis,
        gated=gated,
    )


def verdicts(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[Verdict]:
    """Per comparison: FAIL, WARN or PASS.

    A gated metric FAILs when its own test rejects H0 "worse by at most THRESHOLD" at
    ``alpha``: each gated metric is its own claim ("http's p50 is more than 10 % slower"),
    tested at its own level. What keeps an unchanged build from failing is the margin, not
    a correction: with no change the chance that a metric's runs confirm a 10 % slowdown is
    far below ``alpha`` (and shrinks as the runs get quieter), while a correction over the
    scenarios would only protect builds that really are about 10 % slower, at the price of
    a quarter or more of the power against a 30 % one.

    A reported metric WARNs when confirmed after Holm's correction over the reported
    family (p90, p99, open-loop throughput of every scenario): a warning should mean
    something even when a dozen noisy metrics are reported. Everything else PASSes,
    however large its point estimate (the runs were too noisy to tell).
    """
    out = [Verdict.PASS] * len(comparisons)
    reported = [i for i, c in enumerate(comparisons) if not c.gated]
    for i, c in enumerate(comparisons):
        if c.gated and c.p_worse <= alpha:
            out[i] = Verdict.FAIL
    adjusted = holm([comparisons[i].p_worse for i in reported])
    for i, p in zip(reported, adjusted, strict=True):
        if p <= alpha:
            out[i] = Verdict.WARN
    return out
