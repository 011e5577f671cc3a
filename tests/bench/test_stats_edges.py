"""Edges of the gate statistics that the A/A and A/B fixtures do not reach: bad input and its
messages, exact values on constant runs, verdicts at alpha, the reported family's Holm."""

from __future__ import annotations

import math

import attrs
import pytest

from perfgate.bench import stats


def test_bad_input_is_refused_with_its_reason() -> None:
    with pytest.raises(ValueError, match=r"^both sides need at least one run$"):
        stats.p_shift_at_most([], [1.0], 0.0)
    with pytest.raises(ValueError, match=r"^http\.p50: both sides need at least one run$"):
        stats.compare("http", "p50", [1.0], [], higher_is_worse=True)
    for baseline, current in (([0.0, 1.0], [1.0]), ([1.0], [1.0, 0.0])):
        with pytest.raises(ValueError, match=r"^http\.p99: values must be positive$"):
            stats.compare("http", "p99", baseline, current, higher_is_worse=True)


def test_constant_runs_give_exact_figures() -> None:
    result = stats.compare("jobs", "p50", [0.5] * 3, [0.25] * 3, higher_is_worse=False)
    assert (result.scenario, result.metric, result.higher_is_worse) == ("jobs", "p50", False)
    assert (result.baseline_median, result.current_median) == (0.5, 0.25)
    assert result.ratio == pytest.approx(0.5)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.5, 0.5))
    # lower is worse: twice as bad; 3 runs a side prove at most 1 in C(6, 3)
    assert result.worseness == pytest.approx(2.0)
    assert result.p_worse == pytest.approx(1 / math.comb(6, 3))


def test_an_unchanged_lower_is_worse_metric_is_not_worse() -> None:
    result = stats.compare("http", "rps", [100.0] * 3, [100.0] * 3, higher_is_worse=False)
    assert result.p_worse == 1.0
    assert result.ratio == 1.0


BASE = stats.Comparison(
    scenario="s",
    metric="p50",
    higher_is_worse=True,
    baseline_median=1.0,
    current_median=2.0,
    ratio=2.0,
    ci_low=2.0,
    ci_high=2.0,
    p_worse=1.0,
)


def test_a_p_value_equal_to_alpha_is_significant() -> None:
    at_alpha = stats.ALPHA
    assert stats.verdicts([attrs.evolve(BASE, p_worse=at_alpha)]) == [stats.Verdict.FAIL]
    assert stats.verdicts([attrs.evolve(BASE, p_worse=at_alpha * 1.01)]) == [stats.Verdict.PASS]
    assert stats.verdicts([BASE]) == [stats.Verdict.PASS]


def test_gated_metrics_are_not_corrected_reported_ones_are() -> None:
    gated = [attrs.evolve(BASE, p_worse=0.04) for _ in range(4)]
    assert stats.verdicts(gated) == [stats.Verdict.FAIL] * 4
    # reported: Holm over the 4 makes 0.04 into 0.16
    reported = [attrs.evolve(c, gated=False) for c in gated]
    assert stats.verdicts(reported) == [stats.Verdict.PASS] * 4
    assert stats.verdicts(reported[:1]) == [stats.Verdict.WARN]
    # the reported family does not dilute the gated one
    assert stats.verdicts([*gated[:1], *reported]) == [
        stats.Verdict.FAIL,
        *[stats.Verdict.PASS] * 4,
    ]
