"""The gate's statistics on synthetic samples: pure functions, seeded RNG, no I/O."""

from __future__ import annotations

import random

import pytest

from perfgate.bench import stats


def runs(rng: random.Random, centre: float, n: int = 5, noise: float = 0.05) -> list[float]:
    return [centre * rng.lognormvariate(0.0, noise) for _ in range(n)]


def test_a_a_comparison_passes() -> None:
    rng = random.Random(1)
    base, cur = runs(rng, 10.0), runs(rng, 10.0)
    c = stats.compare("http", "p50", base, cur, higher_is_worse=True, rng=rng)
    assert c.ci_low < 1.0 < c.ci_high
    assert stats.verdicts([c]) == [stats.Verdict.PASS]


def test_many_a_a_comparisons_pass_after_holm() -> None:
    rng = random.Random(2)
    comparisons = [
        stats.compare(
            f"s{i}",
            "p99",
            runs(rng, 5.0, noise=0.15),
            runs(rng, 5.0, noise=0.15),
            higher_is_worse=True,
            rng=rng,
            resamples=1000,
        )
        for i in range(12)
    ]
    assert set(stats.verdicts(comparisons)) <= {stats.Verdict.PASS, stats.Verdict.WARN}
    assert stats.Verdict.FAIL not in stats.verdicts(comparisons)


def test_doubled_latency_fails_and_reports_the_change() -> None:
    rng = random.Random(3)
    base = runs(rng, 10.0)
    cur = [2.0 * v for v in runs(rng, 10.0)]
    c = stats.compare("http", "p99", base, cur, higher_is_worse=True, rng=rng)
    assert c.ci_low > stats.FAIL_RATIO
    assert c.change_pct == pytest.approx(100.0, abs=20.0)
    assert stats.verdicts([c]) == [stats.Verdict.FAIL]


def test_halved_throughput_fails_and_doubled_throughput_passes() -> None:
    rng = random.Random(4)
    base = runs(rng, 200.0)
    worse = stats.compare(
        "http", "throughput", base, [v / 2 for v in base], higher_is_worse=False, rng=rng
    )
    better = stats.compare(
        "http", "throughput", base, [v * 2 for v in base], higher_is_worse=False, rng=rng
    )
    assert stats.verdicts([worse, better]) == [stats.Verdict.FAIL, stats.Verdict.PASS]


def test_twenty_percent_worse_warns_but_does_not_fail() -> None:
    rng = random.Random(5)
    base = runs(rng, 10.0, n=7, noise=0.01)
    cur = [1.2 * v for v in runs(rng, 10.0, n=7, noise=0.01)]
    c = stats.compare("jobs", "p50", base, cur, higher_is_worse=True, rng=rng)
    assert stats.verdicts([c]) == [stats.Verdict.WARN]


def test_noisy_doubling_with_few_runs_is_not_declared_a_failure() -> None:
    # 3 runs each, one wild outlier in the current: the bootstrap interval is wide
    base = [10.0, 10.5, 9.8]
    cur = [10.1, 30.0, 9.9]
    c = stats.compare("x", "p99", base, cur, higher_is_worse=True, rng=random.Random(6))
    assert stats.verdicts([c]) != [stats.Verdict.FAIL]


def test_same_seed_same_answer() -> None:
    base, cur = [1.0, 1.2, 0.9, 1.1], [1.3, 1.1, 1.4, 1.2]
    a = stats.bootstrap_ratios(base, cur, rng=random.Random(7), resamples=500)
    b = stats.bootstrap_ratios(base, cur, rng=random.Random(7), resamples=500)
    assert a == b
    assert a == sorted(a)


def test_holm_matches_hand_computed_values() -> None:
    # sorted p: .005*4=.02, .01*3=.03, .03*2=.06, .04*1=.04 -> monotone .06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_keeps_order() -> None:
    assert stats.holm([0.9, 0.5]) == [1.0, 1.0]
    assert stats.holm([]) == []


def test_holm_is_less_conservative_than_bonferroni_but_controls_the_family() -> None:
    # Bonferroni (x3) would reject only the first at alpha .05; Holm rejects two
    adjusted = stats.holm([0.01, 0.02, 0.2])
    assert [p <= 0.05 for p in adjusted] == [True, True, False]


def test_p_value_is_never_zero() -> None:
    assert stats.p_not_worse_than([2.0] * 99, 1.3) == pytest.approx(0.01)


def test_percentile_interval_of_a_known_distribution() -> None:
    samples = [float(i) for i in range(1000)]
    lo, hi = stats.percentile_interval(samples, 0.95)
    assert lo == 25.0
    assert hi == 974.0


@pytest.mark.parametrize(
    ("base", "cur"), [([], [1.0]), ([1.0], []), ([0.0, 1.0], [1.0, 1.0]), ([1.0], [-1.0])]
)
def test_bad_input_is_a_value_error(base: list[float], cur: list[float]) -> None:
    with pytest.raises(ValueError):
        stats.compare("s", "p50", base, cur, higher_is_worse=True, rng=random.Random(0))
