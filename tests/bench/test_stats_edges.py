"""Edges of the gate statistics that the A/A and A/B fixtures do not reach: bad input and its
messages, the interval's ends, the p-value at its threshold, Holm's cap, verdicts at alpha."""

from __future__ import annotations

import random

import attrs
import pytest

from perfgate.bench import stats


def test_bad_input_is_refused_with_its_reason() -> None:
    rng = random.Random(1)
    with pytest.raises(ValueError, match=r"^both sides need at least one run$"):
        stats.bootstrap_ratios([], [1.0], rng=rng)
    with pytest.raises(ValueError, match=r"^both sides need at least one run$"):
        stats.bootstrap_ratios([1.0], [], rng=rng)
    with pytest.raises(ValueError, match=r"^baseline median must be positive$"):
        stats.bootstrap_ratios([0.0], [1.0], rng=rng)
    with pytest.raises(ValueError, match=r"^no samples$"):
        stats.percentile_interval([], 0.95)
    for baseline, current in (([0.0, 1.0], [1.0]), ([1.0], [1.0, 0.0])):
        with pytest.raises(ValueError, match=r"^http\.p99: values must be positive$"):
            stats.compare("http", "p99", baseline, current, higher_is_worse=True, rng=rng)


def test_small_positive_values_are_fine_and_carried_into_the_comparison() -> None:
    result = stats.compare(
        "jobs",
        "p50",
        [0.5, 0.5, 0.5],
        [0.25, 0.25, 0.25],
        higher_is_worse=False,
        rng=random.Random(3),
        resamples=50,
    )
    assert (result.scenario, result.metric, result.higher_is_worse) == ("jobs", "p50", False)
    assert (result.baseline_median, result.current_median, result.ratio) == (0.5, 0.25, 0.5)
    # Every resample has ratio 0.5: lower-is-worse, that is twice as bad, beyond both limits.
    assert (result.ci_low, result.ci_high) == (0.5, 0.5)
    assert result.p_worse == 1 / 51


def test_percentile_interval_ends() -> None:
    samples = [float(i) for i in range(100)]
    assert stats.percentile_interval(samples, 0.5) == (25.0, 74.0)
    assert stats.percentile_interval([7.0], 0.95) == (7.0, 7.0)
    assert stats.percentile_interval([1.0, 2.0, 3.0], 1.0) == (1.0, 3.0)
    assert stats.percentile_interval([1.0, 2.0], 0.5) == (1.0, 1.0)


def test_p_value_counts_resamples_at_the_threshold_as_not_worse() -> None:
    assert stats.p_not_worse_than([1.0, 1.5, 2.0], 1.5) == 3 / 4
    assert stats.p_not_worse_than([2.0, 3.0], 1.5) == 1 / 3


def test_holm_caps_at_one() -> None:
    assert stats.holm([0.6, 0.9]) == [1.0, 1.0]


def test_a_p_value_equal_to_alpha_is_significant() -> None:
    base = stats.Comparison(
        scenario="s",
        metric="m",
        higher_is_worse=True,
        baseline_median=1.0,
        current_median=2.0,
        ratio=2.0,
        ci_low=2.0,
        ci_high=2.0,
        p_worse=1.0,
    )
    at_alpha = stats.ALPHA
    assert stats.verdicts([attrs.evolve(base, p_worse=at_alpha)]) == [stats.Verdict.FAIL]
    # Confirmed worse, but the point estimate is under the fail point: a warning.
    modest = attrs.evolve(base, p_worse=at_alpha, ratio=stats.FAIL_POINT_RATIO - 0.01)
    assert stats.verdicts([modest]) == [stats.Verdict.WARN]
    assert stats.verdicts([attrs.evolve(base, p_worse=at_alpha * 1.01)]) == [stats.Verdict.PASS]
    assert stats.verdicts([base]) == [stats.Verdict.PASS]


def test_the_interval_is_the_central_95_percent_of_the_resampled_ratios() -> None:
    baseline, current = [10.0, 11.0, 12.0, 13.0, 30.0], [9.0, 12.0, 14.0, 15.0, 40.0]
    result = stats.compare(
        "http", "p99", baseline, current, higher_is_worse=True, rng=random.Random(5)
    )
    ratios = stats.bootstrap_ratios(baseline, current, rng=random.Random(5))
    assert (result.ci_low, result.ci_high) == stats.percentile_interval(ratios, 0.95)
    assert ratios[0] < result.ci_low < result.ci_high < ratios[-1]
    assert stats.percentile_interval(ratios, 1.0) == (ratios[0], ratios[-1])


def test_an_unchanged_lower_is_worse_metric_is_not_worse() -> None:
    result = stats.compare(
        "http", "rps", [100.0] * 3, [100.0] * 3, higher_is_worse=False, rng=random.Random(2)
    )
    assert result.p_worse == 1.0
