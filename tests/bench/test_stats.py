"""The gate's statistics on synthetic samples: pure functions, no I/O, no randomness."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from perfgate.bench import stats


def runs(rng: random.Random, centre: float, n: int = 7, noise: float = 0.05) -> list[float]:
    return [centre * rng.lognormvariate(0.0, noise) for _ in range(n)]


def brute_force_tail(m: int, n: int) -> list[float]:
    """P(U >= u) by listing every way to rank m baseline and n current runs."""
    counts = [0] * (m * n + 1)
    for baseline in itertools.combinations(range(m + n), m):
        current = set(range(m + n)) - set(baseline)
        counts[sum(1 for c in current for b in baseline if c > b)] += 1
    total = sum(counts)
    return [sum(counts[u:]) / total for u in range(m * n + 1)]


@pytest.mark.parametrize(("m", "n"), [(1, 1), (3, 3), (4, 3), (3, 5), (7, 7)])
def test_the_rank_sum_distribution_is_exact(m: int, n: int) -> None:
    tail = stats._rank_sum_tail(m, n)
    assert tail[: m * n + 1] == pytest.approx(brute_force_tail(m, n), abs=1e-12)
    assert tail[0] == 1.0


def test_seven_runs_against_seven_runs_can_prove_at_most_one_in_3432() -> None:
    base = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6]
    cur = [v + 10.0 for v in base]
    assert stats.p_shift_at_most(base, cur, 0.0) == pytest.approx(1 / math.comb(14, 7))
    # shifted back by the threshold the current is no longer above every baseline run
    assert stats.p_shift_at_most(base, cur, 10.05) > stats.p_shift_at_most(base, cur, 0.0)
    assert stats.p_shift_at_most(base, base, 0.0) > 0.5


def test_a_tie_counts_as_not_worse() -> None:
    assert stats.p_shift_at_most([1.0], [1.0], 0.0) == 1.0
    assert stats.p_shift_at_most([1.0], [1.5], 0.5) == 1.0
    assert stats.p_shift_at_most([1.0], [1.5], 0.4) == 0.5


def test_the_shift_estimate_is_the_median_pairwise_difference() -> None:
    assert stats.shift_estimate([0.0, 1.0], [10.0, 12.0]) == pytest.approx(10.5)
    # one wild run moves it by one rank, not by its size
    assert stats.shift_estimate([0.0, 1.0, 2.0], [5.0, 6.0, 100.0]) == pytest.approx(5.0)


def test_the_interval_is_the_test_inverted() -> None:
    rng = random.Random(1)
    base = [rng.gauss(0.0, 1.0) for _ in range(7)]
    cur = [rng.gauss(3.0, 1.0) for _ in range(7)]
    lo, hi = stats.shift_interval(base, cur)
    assert lo < stats.shift_estimate(base, cur) < hi
    # just below the lower end the one-sided test at 2.5 % rejects; at it, it does not
    assert stats.p_shift_at_most(base, cur, lo - 1e-9) <= 0.025
    assert stats.p_shift_at_most(base, cur, lo) > 0.025


def test_with_too_few_runs_the_interval_is_every_difference() -> None:
    assert stats.shift_interval([0.0, 1.0], [5.0, 7.0]) == (4.0, 7.0)


def test_a_a_comparison_passes() -> None:
    rng = random.Random(1)
    c = stats.compare("http", "p50", runs(rng, 10.0), runs(rng, 10.0), higher_is_worse=True)
    assert c.ci_low < 1.0 < c.ci_high
    assert stats.verdicts([c]) == [stats.Verdict.PASS]


def test_doubled_latency_fails_and_reports_the_change() -> None:
    rng = random.Random(3)
    base = runs(rng, 10.0)
    cur = [2.0 * v for v in runs(rng, 10.0)]
    c = stats.compare("http", "p50", base, cur, higher_is_worse=True)
    assert c.ci_low > stats.FAIL_RATIO
    assert c.change_pct == pytest.approx(100.0, abs=10.0)
    assert stats.verdicts([c]) == [stats.Verdict.FAIL]


def test_halved_throughput_fails_and_doubled_throughput_passes() -> None:
    rng = random.Random(4)
    base = runs(rng, 200.0)
    worse = stats.compare("w", "throughput", base, [v / 2 for v in base], higher_is_worse=False)
    better = stats.compare("w", "throughput", base, [v * 2 for v in base], higher_is_worse=False)
    assert worse.worseness == pytest.approx(2.0)
    assert worse.ci_low <= worse.ratio <= worse.ci_high
    assert stats.verdicts([worse, better]) == [stats.Verdict.FAIL, stats.Verdict.PASS]


def test_five_percent_slower_passes_however_quiet_the_runs() -> None:
    rng = random.Random(5)
    base = runs(rng, 10.0, noise=0.001)
    cur = [1.05 * v for v in runs(rng, 10.0, noise=0.001)]
    assert stats.verdicts([stats.compare("j", "p50", base, cur, higher_is_worse=True)]) == [
        stats.Verdict.PASS
    ]


def test_noisy_doubling_with_few_runs_is_not_declared_a_failure() -> None:
    # 3 runs each, one wild outlier in the current: the ranks cannot tell
    c = stats.compare("x", "p50", [10.0, 10.5, 9.8], [10.1, 30.0, 9.9], higher_is_worse=True)
    assert stats.verdicts([c]) != [stats.Verdict.FAIL]


def test_a_reported_metric_warns_and_never_fails() -> None:
    base = [10.0, 10.1, 9.9, 10.2, 9.8, 10.05, 9.95]
    c = stats.compare("h", "p99", base, [3 * v for v in base], higher_is_worse=True, gated=False)
    assert stats.verdicts([c]) == [stats.Verdict.WARN]


def test_holm_matches_hand_computed_values() -> None:
    # sorted p: .005*4=.02, .01*3=.03, .03*2=.06, .04*1=.04 -> monotone .06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_keeps_order() -> None:
    assert stats.holm([0.9, 0.5]) == [1.0, 1.0]
    assert stats.holm([]) == []


@pytest.mark.parametrize(
    ("base", "cur"), [([], [1.0]), ([1.0], []), ([0.0, 1.0], [1.0, 1.0]), ([1.0], [-1.0])]
)
def test_bad_input_is_a_value_error(base: list[float], cur: list[float]) -> None:
    with pytest.raises(ValueError):
        stats.compare("s", "p50", base, cur, higher_is_worse=True)


# -- the rule on a synthetic noise model ----------------------------------------------------


def rates(noise: float, outliers: float, trials: int = 400) -> tuple[float, float]:
    """A/A fail rate and 30 % catch rate of one gated metric, 7 runs a side, each run's value
    lognormal(noise), a fraction ``outliers`` of runs 1.6x slower (a disturbed run)."""
    rng = random.Random(11)

    def sample(scale: float) -> list[float]:
        return [
            scale * rng.lognormvariate(0.0, noise) * (1.6 if rng.random() < outliers else 1.0)
            for _ in range(7)
        ]

    failed = caught = 0
    for _ in range(trials):
        base = sample(1.0)
        for scale in (1.0, 1.3):
            c = stats.compare("s", "p50", base, sample(scale), higher_is_worse=True)
            if stats.verdicts([c]) == [stats.Verdict.FAIL]:
                failed += scale == 1.0
                caught += scale == 1.3
    return failed / trials, caught / trials


def test_on_steady_runs_one_metric_meets_both_goals() -> None:
    # 5 % run-to-run spread, no disturbed run: one gated metric alone suffices
    false_alarms, catches = rates(noise=0.05, outliers=0.0)
    assert false_alarms <= 0.01
    assert catches >= 0.95


def test_noise_and_disturbed_runs_cost_catches_never_false_alarms() -> None:
    # what the rule trades: a noisier machine or a disturbed run in 7 lowers the catch rate
    # of one metric, but no noise level below the 10 % margin makes an A/A pair fail
    noisy = rates(noise=0.15, outliers=0.0)
    disturbed = rates(noise=0.05, outliers=1 / 7)
    for false_alarms, catches in (noisy, disturbed):
        assert false_alarms <= 0.01
        assert catches < 0.95
