"""Threshold alerts with hysteresis. Pure: readings and time are passed in.

Each evaluation takes a list of :class:`Check` (one figure against its threshold) and returns
the *transitions* (:class:`AlertEvent`: raised, changed, cleared), so the caller logs and
publishes each alert once, not once per tick. Hysteresis works twice over:

- in value: an alert is raised at ``value >= threshold`` and only clears once
  ``value < clear_below`` (by default 90 % of the threshold), so a figure hovering at the line
  does not flap;
- in time: it is raised only after the figure stayed over the threshold for ``raise_after_s``,
  and cleared only after it stayed under ``clear_below`` (or stopped being reported) for
  ``clear_after_s``.

A check that is no longer reported (a route without traffic, a regression no longer found)
counts as cleared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from perfgate.config import MonitorConfig
from perfgate.monitor.regression import Regression
from perfgate.monitor.window import WindowStats

HYSTERESIS = 0.9
Severity = Literal["warning", "critical"]
EventKind = Literal["raised", "changed", "cleared"]


@attrs.frozen
class Check:
    rule: str
    subject: str
    value: float
    threshold: float
    message: str
    clear_below: float | None = None  # default: HYSTERESIS * threshold
    severity: Severity = "warning"

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.subject}"

    @property
    def clear_level(self) -> float:
        return self.threshold * HYSTERESIS if self.clear_below is None else self.clear_below


@attrs.frozen
class Alert:
    rule: str
    subject: str
    severity: Severity
    value: float
    threshold: float
    message: str
    since_s: float

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.subject}"

    def to_json(self, now_s: float) -> dict[str, Any]:
        return {
            "id": self.key,
            "rule": self.rule,
            "subject": self.subject,
            "severity": self.severity,
            "value": round(self.value, 3),
            "threshold": round(self.threshold, 3),
            "message": self.message,
            "active_for_s": round(max(0.0, now_s - self.since_s), 1),
        }


@attrs.frozen
class AlertEvent:
    kind: EventKind
    alert: Alert
    at_s: float

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind, "alert": self.alert.to_json(self.at_s)}


@attrs.define
class _State:
    active: Alert | None = None
    hot_since_s: float | None = None
    cool_since_s: float | None = None


class AlertBook:
    """The set of active alerts, moved by :meth:`evaluate`."""

    def __init__(self, *, raise_after_s: float = 3.0, clear_after_s: float = 10.0) -> None:
        self.raise_after_s = raise_after_s
        self.clear_after_s = clear_after_s
        self._states: dict[str, _State] = {}

    def active(self) -> list[Alert]:
        """Active alerts, critical first, then oldest first."""
        alerts = [s.active for s in self._states.values() if s.active is not None]
        return sorted(alerts, key=lambda a: (a.severity != "critical", a.since_s, a.key))

    def evaluate(self, checks: Iterable[Check], now_s: float) -> list[AlertEvent]:
        by_key = {check.key: check for check in checks}
        events: list[AlertEvent] = []
        for key in sorted(by_key.keys() | self._states.keys()):
            state = self._states.setdefault(key, _State())
            event = self._step(state, by_key.get(key), now_s)
            if event is not None:
                events.append(event)
            if state.active is None and state.hot_since_s is None:
                del self._states[key]
        return events

    def _step(self, state: _State, check: Check | None, now_s: float) -> AlertEvent | None:
        hot = check is not None and check.value >= check.threshold
        cool = check is None or check.value < check.clear_level
        if hot:
            assert check is not None
            state.cool_since_s = None
            if state.active is None:
                if state.hot_since_s is None:
                    state.hot_since_s = now_s
                if now_s - state.hot_since_s < self.raise_after_s:
                    return None
                state.active = _alert(check, since_s=now_s)
                return AlertEvent("raised", state.active, now_s)
            previous = state.active
            state.active = _alert(check, since_s=previous.since_s)
            if previous.severity != check.severity:
                return AlertEvent("changed", state.active, now_s)
            return None
        state.hot_since_s = None
        if state.active is None:
            return None
        if not cool:  # inside the hysteresis band: stays raised
            state.cool_since_s = None
            assert check is not None
            state.active = attrs.evolve(state.active, value=check.value)
            return None
        if state.cool_since_s is None:
            state.cool_since_s = now_s
        if now_s - state.cool_since_s < self.clear_after_s:
            return None
        cleared = state.active
        if check is not None:
            cleared = attrs.evolve(cleared, value=check.value)
        state.active = None
        state.cool_since_s = None
        return AlertEvent("cleared", cleared, now_s)


def _alert(check: Check, *, since_s: float) -> Alert:
    return Alert(
        rule=check.rule,
        subject=check.subject,
        severity=check.severity,
        value=check.value,
        threshold=check.threshold,
        message=check.message,
        since_s=since_s,
    )


def threshold_checks(
    config: MonitorConfig,
    *,
    system: Mapping[str, Any],
    routes: Mapping[str, WindowStats],
    queue_depth: int | None,
    min_samples: int,
) -> list[Check]:
    """The threshold checks of the ``[monitor]`` section, from the current figures.

    CPU is checked twice: the process as a percentage of *one* core (the trio loop is one
    thread, so ~100 % there means the loop is saturated even on an idle many-core host), and
    the host over all cores. Error rate (5xx only) and p99 are per route, and only for routes
    with at least ``min_samples`` requests in the window.
    """
    checks: list[Check] = []
    for subject, key in (("process", "process_cpu_pct"), ("host", "host_cpu_pct")):
        value = system.get(key)
        if isinstance(value, int | float):
            checks.append(
                Check(
                    "cpu",
                    subject,
                    float(value),
                    config.cpu_alert_pct,
                    f"{subject} CPU at {value:.0f}% (alert at {config.cpu_alert_pct:g}%)",
                )
            )
    memory = system.get("host_memory_pct")
    if isinstance(memory, int | float):
        checks.append(
            Check(
                "memory",
                "host",
                float(memory),
                config.memory_alert_pct,
                f"host memory at {memory:.0f}% (alert at {config.memory_alert_pct:g}%)",
            )
        )
    if queue_depth is not None:
        checks.append(
            Check(
                "queue_depth",
                "pool",
                float(queue_depth),
                float(config.queue_depth_alert),
                f"{queue_depth} jobs queued (alert at {config.queue_depth_alert})",
            )
        )
    for route, stats in routes.items():
        if stats.count < min_samples:
            continue
        checks.append(
            Check(
                "error_rate",
                route,
                stats.error_rate_pct,
                config.error_rate_alert_pct,
                f"{route}: {stats.error_rate_pct:.1f}% of requests failed "
                f"(alert at {config.error_rate_alert_pct:g}%)",
            )
        )
        checks.append(
            Check(
                "p99",
                route,
                stats.p99_ms,
                config.p99_alert_ms,
                f"{route}: p99 {stats.p99_ms:.1f} ms (alert at {config.p99_alert_ms:g} ms)",
            )
        )
    return checks


def regression_checks(regressions: Iterable[Regression], warn_pct: float) -> list[Check]:
    """Regressions as checks: present while detected, with the detector's severity."""
    return [
        Check(
            "regression",
            f"{r.series} {r.metric}",
            r.worse_pct,
            warn_pct,
            r.message,
            severity=r.severity,
        )
        for r in regressions
    ]
