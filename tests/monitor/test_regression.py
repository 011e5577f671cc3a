"""Regression detection: 15 % warns, 30 % is critical, but never inside the baseline's noise."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from perfgate.monitor.regression import RegressionPolicy, detect, noise_band
from perfgate.monitor.window import RollingWindow, WindowStats

POLICY = RegressionPolicy(min_samples=100)


def steady(p99: float, count: int = 1000) -> WindowStats:
    return WindowStats(count=count, duration_s=60.0, p99_ms=p99)


def slices_of(p99s: list[float], count: int = 80) -> list[WindowStats]:
    return [WindowStats(count=count, duration_s=5.0, p99_ms=v) for v in p99s]


QUIET = slices_of([10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.1, 10.0, 10.2, 9.9, 10.0, 10.1])


def test_no_regression_when_equal() -> None:
    assert detect("GET /", steady(10.0), steady(10.0), QUIET, POLICY) == []


def test_warning_past_15_percent_and_critical_past_30() -> None:
    (warn,) = detect("GET /", steady(12.0), steady(10.0), QUIET, POLICY)
    assert (warn.metric, warn.severity) == ("p99_ms", "warning")
    assert round(warn.worse_pct) == 20
    (crit,) = detect("GET /", steady(14.0), steady(10.0), QUIET, POLICY)
    assert crit.severity == "critical"
    assert detect("GET /", steady(11.4), steady(10.0), QUIET, POLICY) == []  # 14 %: fine
    assert detect("GET /", steady(8.0), steady(10.0), QUIET, POLICY) == []  # better is fine


def test_inside_a_noisy_baseline_it_is_not_a_regression() -> None:
    noisy = slices_of([5.0, 15.0, 8.0, 14.0, 6.0, 16.0, 7.0, 13.0, 10.0, 12.0, 5.0, 15.0])
    assert detect("GET /", steady(13.0), steady(10.0), noisy, POLICY) == []
    # ...but a change far beyond that noise still is.
    (found,) = detect("GET /", steady(30.0), steady(10.0), noisy, POLICY)
    assert found.severity == "critical" and found.noise_pct > 15


def test_a_handful_of_samples_is_never_a_regression() -> None:
    assert detect("GET /", steady(100.0, count=20), steady(10.0), QUIET, POLICY) == []
    assert detect("GET /", steady(100.0), steady(10.0, count=20), QUIET, POLICY) == []
    sparse = slices_of([10.0] * 12, count=3)  # slices too thin to estimate the p99's noise
    assert detect("GET /", steady(100.0), steady(10.0), sparse, POLICY) == []


def test_throughput_drop_is_reported_with_its_caveat() -> None:
    base = WindowStats(count=6000, duration_s=60.0, p99_ms=10.0)
    now = WindowStats(count=3000, duration_s=60.0, p99_ms=10.0)
    rates = [WindowStats(count=500 + d, duration_s=5.0, p99_ms=10.0) for d in (0, 5, -5) * 4]
    (found,) = detect("POST /v1/jobs", now, base, rates, POLICY)
    assert found.metric == "throughput_per_s" and found.severity == "critical"
    assert "fewer requests" in found.message


def test_noise_band_needs_three_slices() -> None:
    assert noise_band([1.0, 2.0], 1.0, 3.0) is None
    assert noise_band([1.0, 1.0, 1.0], 1.0, 3.0) == 0.0


def test_from_real_windows_a_step_change_is_found_and_steady_noise_is_not() -> None:
    rng = random.Random(7)
    window = RollingWindow(60.0, start_s=0.0, slices=12)
    for t in range(120):
        slow = 2.0 if t >= 60 else 1.0
        for _ in range(50):
            window.record(rng.uniform(0.005, 0.010) * slow, now_s=t + 0.5)
    found = detect(
        "GET /", window.current(119.9), window.baseline(119.9), window.baseline_slices(119.9)
    )
    assert [(r.metric, r.severity) for r in found] == [("p99_ms", "critical")]
    steady_window = RollingWindow(60.0, start_s=0.0, slices=12)
    for t in range(120):
        for _ in range(50):
            steady_window.record(rng.uniform(0.005, 0.010), now_s=t + 0.5)
    assert (
        detect(
            "GET /",
            steady_window.current(119.9),
            steady_window.baseline(119.9),
            steady_window.baseline_slices(119.9),
        )
        == []
    )


@settings(max_examples=100, deadline=None)
@given(
    st.floats(1.0, 1000.0),
    st.floats(0.0, 3.0),
    st.lists(st.floats(0.5, 2.0), min_size=12, max_size=12),
)
def test_severity_follows_the_thresholds(base: float, ratio: float, jitter: list[float]) -> None:
    slices = slices_of([base * j for j in jitter])
    found = detect("r", steady(base * ratio), steady(base), slices, POLICY)
    p99 = [r for r in found if r.metric == "p99_ms"]
    if ratio <= 1.15:
        assert p99 == []
    for r in p99:
        assert r.worse_pct > 15
        assert r.severity == ("critical" if r.worse_pct > 30 else "warning")
        assert r.current - r.baseline > r.noise_pct / 100 * r.baseline - 1e-9
