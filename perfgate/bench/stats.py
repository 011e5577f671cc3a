"""The gate's statistics (pure: no I/O, no clock; randomness comes from a passed-in RNG).

The unit of evidence is a *run*, not a request: requests within one run share the machine's
state at that moment (a neighbour's build, the CPU's clock), so treating 100,000 requests as
independent makes every drift look significant. We bootstrap over runs instead, compare
medians (robust to one disturbed run), and correct for testing several metrics at once with
Holm's step-down procedure, which controls the family-wise error rate without assuming the
metrics (p50 and p99 of one scenario are strongly correlated) are independent.
"""

from __future__ import annotations

import enum
import random
import statistics
from collections.abc import Sequence

import attrs

#: A move the runs confirm is past this (Holm-corrected) is at least a warning.
WARN_RATIO = 1.15
#: The regression the gate is sized to catch (the power check measures how often it does).
FAIL_RATIO = 1.30
#: A confirmed move whose point estimate reaches this fails. It sits halfway between the warn
#: and fail ratios: requiring the point estimate to pass 1.30 itself would catch a true 30 %
#: regression only half the time (the estimate falls on either side of the truth).
FAIL_POINT_RATIO = (WARN_RATIO + FAIL_RATIO) / 2
ALPHA = 0.05
RESAMPLES = 4000
#: With fewer runs than this on either side a bootstrap cannot say anything.
MIN_RUNS = 3


class Verdict(enum.StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


def bootstrap_ratios(
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    rng: random.Random,
    resamples: int = RESAMPLES,
) -> list[float]:
    """Sorted bootstrap distribution of ``median(current*) / median(baseline*)``.

    Each side is resampled with replacement independently (the runs of the two files are
    not paired). Raises ``ValueError`` on an empty side or a zero baseline median.
    """
    if not baseline or not current:
        raise ValueError("both sides need at least one run")
    ratios: list[float] = []
    nb, nc = len(baseline), len(current)
    for _ in range(resamples):
        b = statistics.median(baseline[rng.randrange(nb)] for _ in range(nb))
        c = statistics.median(current[rng.randrange(nc)] for _ in range(nc))
        if b <= 0:
            raise ValueError("baseline median must be positive")
        ratios.append(c / b)
    ratios.sort()
    return ratios


def percentile_interval(sorted_samples: Sequence[float], confidence: float) -> tuple[float, float]:
    """The central ``confidence`` interval of a sorted bootstrap distribution."""
    if not sorted_samples:
        raise ValueError("no samples")
    tail = (1.0 - confidence) / 2.0
    last = len(sorted_samples) - 1
    lo = sorted_samples[max(0, min(last, int(tail * len(sorted_samples))))]
    hi = sorted_samples[max(0, min(last, int((1.0 - tail) * len(sorted_samples)) - 1))]
    return lo, hi


def p_not_worse_than(sorted_worseness: Sequence[float], threshold: float) -> float:
    """Bootstrap p-value for H0 "worseness <= threshold" (one-sided, add-one smoothed).

    Small when nearly every resample is worse than ``threshold``; never exactly 0, so a
    finite number of resamples cannot claim more certainty than it has.
    """
    at_most = sum(1 for w in sorted_worseness if w <= threshold)
    return (at_most + 1) / (len(sorted_worseness) + 1)


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

    ``ratio`` is current/baseline of the medians, with its 95 % bootstrap interval.
    ``worseness`` orients it so that > 1 is worse (latency up, throughput down).
    ``p_worse`` is the bootstrap p-value of H0 "worseness <= WARN_RATIO". ``basis`` says what
    was compared: ``"absolute"`` (milliseconds, requests/s) or ``"peers"`` (perfgate/peer).
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
    rng: random.Random,
    resamples: int = RESAMPLES,
    warn_ratio: float = WARN_RATIO,
    basis: str = "absolute",
) -> Comparison:
    """Bootstrap one metric. Raises ``ValueError`` on empty input or non-positive values."""
    if any(v <= 0 for v in baseline) or any(v <= 0 for v in current):
        raise ValueError(f"{scenario}.{metric}: values must be positive")
    ratios = bootstrap_ratios(baseline, current, rng=rng, resamples=resamples)
    worseness = ratios if higher_is_worse else sorted(1.0 / r for r in ratios)
    lo, hi = percentile_interval(ratios, 0.95)
    b, c = statistics.median(baseline), statistics.median(current)
    return Comparison(
        scenario=scenario,
        metric=metric,
        higher_is_worse=higher_is_worse,
        baseline_median=b,
        current_median=c,
        ratio=c / b,
        ci_low=lo,
        ci_high=hi,
        p_worse=p_not_worse_than(worseness, warn_ratio),
        basis=basis,
    )


def verdicts(
    comparisons: Sequence[Comparison],
    alpha: float = ALPHA,
    *,
    fail_point_ratio: float = FAIL_POINT_RATIO,
) -> list[Verdict]:
    """Per comparison: FAIL, WARN or PASS, Holm-corrected over the whole family.

    A metric is *confirmed worse* when H0 "worse by at most WARN_RATIO" is rejected at
    ``alpha`` after Holm's correction over every comparison given. A confirmed move FAILs
    when its point estimate reaches ``fail_point_ratio``, and WARNs below that; an
    unconfirmed move PASSes, however large its point estimate (the runs were too noisy to
    tell). Without the correction, 12 metrics at 5 % each would raise a false alarm on about
    every second A/A pair.
    """
    adjusted = holm([c.p_worse for c in comparisons])
    out: list[Verdict] = []
    for c, p in zip(comparisons, adjusted, strict=True):
        if p > alpha:
            out.append(Verdict.PASS)
        elif c.worseness >= fail_point_ratio:
            out.append(Verdict.FAIL)
        else:
            out.append(Verdict.WARN)
    return out
