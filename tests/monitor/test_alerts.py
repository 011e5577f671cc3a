"""Alerts: raised and cleared with hysteresis in value and in time, each transition once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from perfgate.config import MonitorConfig
from perfgate.monitor.alerts import AlertBook, Check, regression_checks, threshold_checks
from perfgate.monitor.regression import Regression
from perfgate.monitor.window import WindowStats


def cpu(value: float) -> Check:
    return Check("cpu", "host", value, 80.0, f"cpu {value}")


def test_raised_after_it_holds_and_once() -> None:
    book = AlertBook(raise_after_s=3.0, clear_after_s=10.0)
    assert book.evaluate([cpu(95)], 0.0) == []
    assert book.evaluate([cpu(95)], 2.0) == []
    events = book.evaluate([cpu(95)], 3.0)
    assert [e.kind for e in events] == ["raised"]
    assert events[0].alert.key == "cpu:host"
    assert book.evaluate([cpu(97)], 4.0) == []  # still raised: no new event
    assert [a.value for a in book.active()] == [97]


def test_a_spike_shorter_than_raise_after_is_ignored() -> None:
    book = AlertBook(raise_after_s=3.0)
    book.evaluate([cpu(95)], 0.0)
    book.evaluate([cpu(50)], 1.0)
    assert book.evaluate([cpu(95)], 3.5) == []  # the hold restarted at 3.5
    assert book.active() == []


def test_hovering_in_the_band_does_not_clear() -> None:
    book = AlertBook(raise_after_s=0.0, clear_after_s=5.0)
    assert [e.kind for e in book.evaluate([cpu(81)], 0.0)] == ["raised"]
    for t in range(1, 30):
        # 75 is under the threshold (80) but over the clear level (72): stays raised.
        assert book.evaluate([cpu(75 if t % 2 else 79)], float(t)) == []
    assert len(book.active()) == 1


def test_clears_after_staying_low_and_once() -> None:
    book = AlertBook(raise_after_s=0.0, clear_after_s=5.0)
    book.evaluate([cpu(90)], 0.0)
    assert book.evaluate([cpu(10)], 1.0) == []
    assert book.evaluate([cpu(10)], 5.0) == []
    events = book.evaluate([cpu(10)], 6.0)
    assert [e.kind for e in events] == ["cleared"]
    assert events[0].alert.value == 10
    assert book.evaluate([cpu(10)], 7.0) == []
    assert book.active() == []


def test_a_check_no_longer_reported_clears() -> None:
    book = AlertBook(raise_after_s=0.0, clear_after_s=2.0)
    book.evaluate([cpu(90)], 0.0)
    book.evaluate([], 1.0)
    assert [e.kind for e in book.evaluate([], 3.0)] == ["cleared"]


def test_severity_change_is_one_event_and_keeps_since() -> None:
    book = AlertBook(raise_after_s=0.0)
    warn = Check("regression", "GET / p99_ms", 20, 15, "worse", severity="warning")
    crit = Check("regression", "GET / p99_ms", 40, 15, "much worse", severity="critical")
    book.evaluate([warn], 0.0)
    events = book.evaluate([crit], 1.0)
    assert [e.kind for e in events] == ["changed"]
    assert events[0].alert.severity == "critical" and events[0].alert.since_s == 0.0
    assert events[0].to_json()["alert"]["active_for_s"] == 1.0


def test_active_lists_critical_first() -> None:
    book = AlertBook(raise_after_s=0.0)
    book.evaluate([cpu(90), Check("regression", "x", 50, 15, "m", severity="critical")], 0.0)
    assert [a.rule for a in book.active()] == ["regression", "cpu"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=60))
def test_events_alternate_raised_and_cleared(values: list[float]) -> None:
    book = AlertBook(raise_after_s=2.0, clear_after_s=3.0)
    kinds = []
    for t, value in enumerate(values):
        kinds += [e.kind for e in book.evaluate([cpu(value)], float(t))]
    assert kinds == ["raised", "cleared"] * (len(kinds) // 2) + ["raised"] * (len(kinds) % 2)
    assert len(book.active()) == kinds.count("raised") - kinds.count("cleared")


def test_threshold_checks_from_the_monitor_section() -> None:
    config = MonitorConfig()
    routes = {
        "GET /busy": WindowStats(count=500, errors=50, duration_s=60, p99_ms=900.0),
        "GET /quiet": WindowStats(count=5, errors=5, duration_s=60, p99_ms=5000.0),
    }
    checks = threshold_checks(
        config,
        system={"process_cpu_pct": 20.0, "host_cpu_pct": 90.0, "host_memory_pct": 50.0},
        routes=routes,
        queue_depth=150,
        min_samples=100,
    )
    by_key = {c.key: c for c in checks}
    assert set(by_key) == {
        "cpu:process",
        "cpu:host",
        "memory:host",
        "queue_depth:pool",
        "error_rate:GET /busy",
        "p99:GET /busy",
    }  # GET /quiet has too few samples to judge
    book = AlertBook(raise_after_s=0.0)
    raised = {e.alert.key for e in book.evaluate(checks, 0.0)}
    assert raised == {"cpu:host", "queue_depth:pool", "error_rate:GET /busy", "p99:GET /busy"}


def test_regressions_become_checks_with_their_severity() -> None:
    found = Regression("GET /", "p99_ms", 10.0, 14.0, 40.0, 5.0, "critical")
    (check,) = regression_checks([found], 15.0)
    assert check.severity == "critical" and check.value >= check.threshold
    assert "p99 latency 40% worse" in check.message
