"""The monitor: observation hooks, the sampler loop, /v1/stats snapshots and /metrics.

The pure parts live next door (``window``, ``alerts``, ``regression``, ``recommend``); this
module holds them together and is the only one that touches trio.

Error accounting: an HTTP request is an error when its status is 5xx (a 4xx is the client's
mistake, and counting it would let any client raise the error-rate alert); a job is an error
unless its outcome is ``succeeded`` or ``cancelled``.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import trio

from perfgate.config import MonitorConfig
from perfgate.logs import log_event
from perfgate.monitor.alerts import AlertBook, AlertEvent, regression_checks, threshold_checks
from perfgate.monitor.metrics import Metrics, Source
from perfgate.monitor.recommend import number, queue_depth, recommend
from perfgate.monitor.regression import Regression, RegressionPolicy, detect
from perfgate.monitor.system import SystemSampler
from perfgate.monitor.window import RollingWindow, SeriesWindows

log = logging.getLogger("perfgate.monitor")

STATS_CHANNEL = "$sys:stats"
ALERTS_CHANNEL = "$sys:alerts"
NOT_ERRORS = frozenset({"succeeded", "cancelled"})
Publish = Callable[[str, Any], Awaitable[None] | None]


class Monitor:
    """Everything the service knows about its own performance.

    Not thread-safe: the hooks, :meth:`snapshot` and :meth:`tick` are called from the trio
    thread. ``clock`` gives monotonic seconds (pass ``trio.current_time`` under a fake clock);
    ``wall_clock`` only stamps snapshots.
    """

    def __init__(
        self,
        config: MonitorConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        system: SystemSampler | None = None,
        raise_after_s: float = 3.0,
        clear_after_s: float = 10.0,
    ) -> None:
        self.config = config
        self._clock = clock
        self._wall_clock = wall_clock
        now = clock()
        self._started_s = now
        self.http = SeriesWindows(config.window_s, start_s=now)
        self.jobs = SeriesWindows(config.window_s, start_s=now)
        self.ws_delivery = RollingWindow(config.window_s, start_s=now)
        self.system = system or SystemSampler()
        self.alerts = AlertBook(raise_after_s=raise_after_s, clear_after_s=clear_after_s)
        self.policy = RegressionPolicy(
            warn_pct=config.regression_warn_pct,
            critical_pct=config.regression_critical_pct,
            min_samples=config.min_samples,
        )
        self.regressions: list[Regression] = []
        self._sources: dict[str, Source] = {}
        self._failing_sources: set[str] = set()
        self._publish_failing = False
        self._previous_sent: tuple[float, float] | None = None
        self._sent_per_s: float | None = None
        self.metrics = Metrics(
            sources=self._sources,
            system=lambda: self.system.latest,
            alerts=self.alerts.active,
            on_source_error=self._source_failed,
        )

    # -- sources and hooks ------------------------------------------------------------------

    def add_source(self, name: str, fn: Source) -> None:
        """Register a component's ``stats()`` (``"pool"``, ``"gateway"``, ``"cache"``): a
        snapshot (:mod:`perfgate.snapshots`) or a dict.

        It is called at each tick, each ``/v1/stats`` and each scrape; it must be cheap and
        must not block. If it raises, its figures are left out of that reading (counted in
        ``perfgate_monitor_source_errors_total`` and logged once until it recovers).
        """
        self._sources[name] = fn

    def remove_source(self, name: str) -> None:
        self._sources.pop(name, None)

    def observe_http(self, route: str, method: str, status: int, duration_s: float) -> None:
        """One finished HTTP request. ``route`` is the URL rule template, not the raw path."""
        key = f"{method.upper()} {route}"
        self.http.record(key, duration_s, self._clock(), error=status >= 500)
        self.metrics.observe_http(route, method, status, duration_s)

    def http_started(self) -> None:
        """A request began (the in-flight gauge); pair with :meth:`http_finished`."""
        self.metrics.http_in_flight.inc()

    def http_finished(self) -> None:
        self.metrics.http_in_flight.dec()

    def observe_job(self, task: str, outcome: str, duration_s: float) -> None:
        """One finished job attempt: ``outcome`` is e.g. succeeded, failed, timeout, cancelled."""
        error = outcome not in NOT_ERRORS
        self.jobs.record(task, duration_s, self._clock(), error=error)
        self.metrics.observe_job(task, outcome, duration_s)

    def observe_ws_delivery(self, latency_s: float) -> None:
        """Publish-to-send latency of one WebSocket message."""
        self.ws_delivery.record(latency_s, self._clock())
        self.metrics.ws_delivery.observe(max(0.0, latency_s))

    def observe_heartbeat_rtt(self, seconds: float) -> None:
        self.metrics.ws_heartbeat_rtt.observe(max(0.0, seconds))

    # -- readings ---------------------------------------------------------------------------

    def _source_failed(self, name: str, exc: Exception) -> None:
        if name not in self._failing_sources:
            self._failing_sources.add(name)
            log_event(log, logging.WARNING, "stats source failed", source=name, exc_info=exc)

    def _read(self, name: str) -> dict[str, Any] | None:
        source = self._sources.get(name)
        if source is None:
            return None
        try:
            stats = source()
        except Exception as exc:
            self.metrics.source_errors.labels(source=name).inc()
            self._source_failed(name, exc)
            return None
        if attrs.has(type(stats)):
            stats = attrs.asdict(stats)  # type: ignore[arg-type]
        if not isinstance(stats, Mapping):
            self.metrics.source_errors.labels(source=name).inc()
            return None
        self._failing_sources.discard(name)
        return _jsonable(stats)  # type: ignore[no-any-return]

    def snapshot(self) -> dict[str, Any]:
        """The JSON document of ``/v1/stats`` and ``$sys:stats`` (see the README for keys)."""
        now = self._clock()
        routes = self.http.current(now)
        http_total = self.http.total.current(now)
        sources = {name: self._read(name) for name in ("pool", "gateway", "cache")}
        extra = {name: self._read(name) for name in sorted(self._sources) if name not in sources}
        system = self.system.latest.to_json()
        recommendations = recommend(
            self.config,
            system=system,
            http_total=http_total,
            pool=sources["pool"],
            gateway=sources["gateway"],
            cache=sources["cache"],
        )
        return {
            "time": self._wall_clock(),
            "uptime_s": round(now - self._started_s, 3),
            "window_s": self.config.window_s,
            "http": {
                "total": http_total.to_json(),
                "routes": {key: stats.to_json() for key, stats in routes.items()},
            },
            "jobs": {
                "total": self.jobs.total.current(now).to_json(),
                "tasks": {key: s.to_json() for key, s in self.jobs.current(now).items()},
            },
            "ws_delivery": self.ws_delivery.current(now).to_json(),
            "system": system,
            **sources,
            "rates": {"ws_messages_sent_per_s": self._sent_per_s},
            "sources": extra,
            "alerts": [alert.to_json(now) for alert in self.alerts.active()],
            "regressions": [r.to_json() for r in self.regressions],
            "recommendations": [r.to_json() for r in recommendations],
        }

    def tick(self) -> tuple[dict[str, Any], list[AlertEvent]]:
        """One sampler step: sample psutil, detect regressions, move alerts, snapshot.

        Returns the snapshot and the alert transitions of this step (each logged here, once).
        """
        now = self._clock()
        self.system.sample()
        self.http.prune(now)
        self.jobs.prune(now)
        self.regressions = [
            found
            for key, window in sorted(self.http.series.items())
            for found in detect(
                key,
                window.current(now),
                window.baseline(now),
                window.baseline_slices(now),
                self.policy,
            )
        ]
        pool = self._read("pool")
        self._update_rates(now, self._read("gateway"))
        checks = threshold_checks(
            self.config,
            system=self.system.latest.to_json(),
            routes=self.http.current(now),
            queue_depth=queue_depth(pool),
            min_samples=self.config.min_samples,
        )
        checks += regression_checks(self.regressions, self.config.regression_warn_pct)
        events = self.alerts.evaluate(checks, now)
        for event in events:
            alert = event.alert
            log_event(
                log,
                logging.INFO if event.kind == "cleared" else logging.WARNING,
                f"alert {event.kind}",
                id=alert.key,
                severity=alert.severity,
                value=round(alert.value, 3),
                threshold=alert.threshold,
                detail=alert.message,
            )
        return self.snapshot(), events

    def _update_rates(self, now: float, gateway: Mapping[str, Any] | None) -> None:
        sent = number(gateway, "messages_sent")
        if sent is None:
            self._previous_sent, self._sent_per_s = None, None
            return
        if self._previous_sent is not None:
            then, before = self._previous_sent
            if now > then and sent >= before:
                self._sent_per_s = round((sent - before) / (now - then), 3)
        self._previous_sent = (now, sent)

    def render_metrics(self) -> tuple[bytes, str]:
        """The Prometheus text exposition (body, content type)."""
        return self.metrics.render()

    # -- the sampler loop -------------------------------------------------------------------

    async def run(
        self,
        publish: Publish,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Every ``sample_interval_s``: :meth:`tick`, publish the snapshot to ``$sys:stats``
        and each alert transition to ``$sys:alerts``. Runs until cancelled.

        ``publish(channel, data)`` may be sync or async. A publish that raises is logged
        (once, until it works again) and skipped; one that takes longer than an interval is
        abandoned, so a stuck broker cannot stall sampling. Cancellation is the only way out
        and leaves nothing behind (the loop owns no tasks or resources).
        """
        interval = self.config.sample_interval_s
        task_status.started()
        deadline = trio.current_time()
        while True:
            deadline += interval
            now = trio.current_time()
            if deadline < now:  # fell behind (a long pause): skip the missed ticks
                deadline = now + interval
            await trio.sleep_until(deadline)
            snapshot, events = self.tick()
            with trio.move_on_after(interval):
                await self._publish(publish, STATS_CHANNEL, snapshot)
                for event in events:
                    await self._publish(publish, ALERTS_CHANNEL, event.to_json())

    async def _publish(self, publish: Publish, channel: str, data: Any) -> None:
        try:
            result = publish(channel, data)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            if not self._publish_failing:
                self._publish_failing = True
                log_event(log, logging.WARNING, "publish failed", channel=channel, exc_info=exc)
            return
        self._publish_failing = False


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of a stats dict: string keys, lists for tuples, str() for the rest."""
    if depth > 8:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # browsers reject NaN in JSON
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v, depth + 1) for v in value]
    return str(value)
