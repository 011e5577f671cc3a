"""Rolling HDR windows: what falls in the current and baseline windows, and their figures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfgate.monitor.window import OTHER, RollingWindow, SeriesWindows, to_micros


def test_percentiles_of_a_known_distribution() -> None:
    window = RollingWindow(60.0, start_s=0.0)
    for ms in range(1, 1001):  # 1..1000 ms, one each
        window.record(ms / 1000, now_s=10.0)
    stats = window.current(10.5)
    assert stats.count == 1000
    assert stats.p50_ms == pytest.approx(500, rel=0.01)
    assert stats.p95_ms == pytest.approx(950, rel=0.01)
    assert stats.p99_ms == pytest.approx(990, rel=0.01)
    assert stats.max_ms == pytest.approx(1000, rel=0.01)


def test_old_observations_leave_the_current_window_for_the_baseline() -> None:
    window = RollingWindow(60.0, start_s=0.0, slices=12)
    for _ in range(10):
        window.record(0.010, now_s=1.0)
    assert window.current(30.0).count == 10
    # Slices are 5 s: at t=65 the slice [0, 5) is out of the current window [5, 65].
    assert window.current(65.0).count == 0
    assert window.baseline(65.0).count == 10
    # Two windows later nothing is left anywhere, even though the ring slot is reused.
    assert window.baseline(125.0).count == 0
    window.record(0.020, now_s=121.0)  # same ring slot as t=1.0
    assert window.current(121.0).count == 1
    assert window.current(121.0).p99_ms == pytest.approx(20, rel=0.01)


def test_throughput_counts_only_time_observed() -> None:
    window = RollingWindow(60.0, start_s=100.0)
    for _ in range(50):
        window.record(0.001, now_s=104.0)
    stats = window.current(110.0)  # observed for 10 s, not 60
    assert stats.throughput_per_s == pytest.approx(5.0)
    # Once a window has passed, the span is the window (less what the newest slice lacks).
    assert 55.0 <= window.current(100.0 + 60.0).duration_s <= 60.0
    assert window.current(100.0 + 64.9).duration_s == pytest.approx(59.9)


def test_errors_and_error_rate() -> None:
    window = RollingWindow(10.0, start_s=0.0)
    for i in range(20):
        window.record(0.001, now_s=1.0, error=i < 3)
    stats = window.current(2.0)
    assert (stats.count, stats.errors) == (20, 3)
    assert stats.error_rate_pct == pytest.approx(15.0)


def test_baseline_slices_cover_the_baseline_window_and_are_stable() -> None:
    window = RollingWindow(12.0, start_s=0.0, slices=12)  # 1 s slices
    for second in range(12):
        for _ in range(second + 1):
            window.record(0.001 * (second + 1), now_s=second + 0.5)
    slices = window.baseline_slices(23.5)  # current: 12..23 s
    assert [s.count for s in slices] == list(range(1, 13))
    assert slices == window.baseline_slices(23.9)  # closed slices do not change


def test_baseline_slices_before_observation_began_are_left_out() -> None:
    window = RollingWindow(12.0, start_s=100.0, slices=12)
    # At t=118 the baseline covers 95..107 s; only 100..107 was observed: seven 1 s slices.
    assert len(window.baseline_slices(118.0)) == 7


def test_bad_values_are_clamped_not_raised() -> None:
    assert to_micros(-1.0) == 0
    assert to_micros(float("nan")) == 0
    assert to_micros(1e9) == 3_600_000_000
    window = RollingWindow(10.0, start_s=0.0)
    window.record(-5.0, now_s=1.0)
    window.record(1e12, now_s=1.0)
    assert window.current(1.0).count == 2


def test_series_are_bounded_and_pruned() -> None:
    windows = SeriesWindows(10.0, start_s=0.0, max_series=4)
    for i in range(10):
        windows.record(f"GET /r{i}", 0.001, now_s=1.0)
    current = windows.current(1.0)
    assert len(current) == 4 and current[OTHER].count == 7
    assert windows.total.current(1.0).count == 10
    windows.record("GET /r0", 0.001, now_s=15.0)
    windows.prune(25.0)  # the others have been idle for over two windows
    assert set(windows.series) == {"GET /r0"}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 119.99), st.floats(0.0, 5.0), st.booleans()),
        min_size=1,
        max_size=200,
    ),
    st.floats(0, 150),
)
def test_current_and_baseline_hold_exactly_the_observations_in_their_spans(
    events: list[tuple[float, float, bool]], now_s: float
) -> None:
    window = RollingWindow(60.0, start_s=0.0, slices=12)
    for t, value, error in sorted(events):
        if t <= now_s:
            window.record(value, now_s=t, error=error)
    current_start = (int(now_s // 5) - 11) * 5
    baseline_start = current_start - 60
    seen = [(t, e) for t, _, e in events if t <= now_s]
    in_current = [e for t, e in seen if t >= current_start]
    in_baseline = [e for t, e in seen if baseline_start <= t < current_start]
    current = window.current(now_s)
    assert current.count == len(in_current)
    assert current.errors == sum(in_current)
    assert window.baseline(now_s).count == len(in_baseline)
    assert current.p50_ms <= current.p95_ms <= current.p99_ms <= current.max_ms + 1e-9
