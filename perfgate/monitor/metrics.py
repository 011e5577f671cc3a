"""Prometheus metrics: a per-monitor registry, event histograms, and a collector for stats dicts.

Each :class:`Metrics` owns its own ``CollectorRegistry`` (never the global one), so that
several services in one test process do not collide. Two kinds of series:

- *events*, observed as they happen through the monitor's ``observe_*`` hooks: HTTP request
  durations, job durations, WebSocket delivery latency and heartbeat round trips;
- *figures* owned by other components, read from their ``stats()`` dicts at scrape time by
  :class:`SourcesCollector` (keys listed on it). A missing key is skipped, never an error.

Labels are bounded: routes are URL rule templates (``/v1/jobs/<job_id>``), never raw paths;
every label passes through a :class:`BoundedLabel`, which folds values past its limit into
``"other"``.

Prometheus conventions hold throughout (``promtool check metrics`` passes): base units
(seconds, bytes, ratios from 0 to 1), ``_total`` on counters, histograms for latencies (no
precomputed quantiles), the standard ``process_*`` series of ``ProcessCollector`` under their
standard names, and one label name per idea (``outcome`` for how a job ended).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from perfgate.monitor.alerts import Alert
from perfgate.monitor.recommend import number as _num
from perfgate.monitor.snapshot_series import (
    cache_series,
    edge_series,
    jobs_series,
    journal_series,
    pool_series,
)
from perfgate.monitor.system import SystemSample
from perfgate.snapshots import (
    CacheSnapshot,
    EdgeSnapshot,
    JobsSnapshot,
    JournalSnapshot,
    PoolSnapshot,
)

OTHER = "other"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
JOB_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
#: A component's ``stats()``: a snapshot (:mod:`perfgate.snapshots`), or a dict (the gateway's).
Source = Callable[[], object]


class BoundedLabel:
    """Passes the first ``limit`` distinct values through; later new ones become "other"."""

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: object) -> str:
        text = str(value)[:128]
        if text in self._seen:
            return text
        if len(self._seen) >= self.limit - 1:
            return OTHER
        self._seen.add(text)
        return text


#: Raw label tuples remembered per series; past this the memo starts over (a client inventing
#: methods must not grow it without bound: the series themselves are bounded by BoundedLabel).
CHILDREN_MAX = 1024


def _remember(children: dict[Any, Any], key: Any, child: Any) -> None:
    if len(children) >= CHILDREN_MAX:
        children.clear()
    children[key] = child


def status_class(status: int) -> str:
    """``200 -> "2xx"``; anything out of range is ``"other"``."""
    return f"{status // 100}xx" if 100 <= status <= 599 else OTHER


class Metrics:
    """The registry and the event series. Not thread-safe beyond what prometheus_client is."""

    def __init__(
        self,
        *,
        sources: Mapping[str, Source],
        system: Callable[[], SystemSample],
        alerts: Callable[[], list[Alert]],
        on_source_error: Callable[[str, Exception], None] = lambda _name, _exc: None,
    ) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        # Registered first: collected first, so a source failing during this scrape is
        # already counted in perfgate_monitor_source_errors_total below.
        registry.register(
            SourcesCollector(sources, system, alerts, self._source_failed, on_source_error)
        )
        self._route = BoundedLabel(200)
        self._task = BoundedLabel(100)
        self._outcome = BoundedLabel(20)
        # Each observation's labelled child, by the raw values it was asked for: finding a
        # child through ``labels()`` (keyword checks, label folding, a locked dict) cost more
        # than the observation itself, on every request and every job.
        self._http_children: dict[tuple[str, str, int], Any] = {}
        self._job_children: dict[tuple[str, str], Any] = {}
        self.http_duration = Histogram(
            "perfgate_http_request_duration_seconds",
            "HTTP request duration, by route template, method and status class.",
            ["route", "method", "status_class"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.http_in_flight = Gauge(
            "perfgate_http_requests_in_flight", "HTTP requests being handled.", registry=registry
        )
        self.job_duration = Histogram(
            "perfgate_job_duration_seconds",
            "Job duration from start to finish, by task and outcome.",
            ["task", "outcome"],
            buckets=JOB_BUCKETS_S,
            registry=registry,
        )
        self.ws_delivery = Histogram(
            "perfgate_ws_delivery_seconds",
            "Publish-to-send latency of WebSocket messages.",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.ws_heartbeat_rtt = Histogram(
            "perfgate_ws_heartbeat_rtt_seconds",
            "WebSocket heartbeat ping/pong round-trip time.",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.source_errors = Counter(
            "perfgate_monitor_source_errors",
            "stats() providers that raised or returned a non-dict, by source.",
            ["source"],
            registry=registry,
        )
        # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
        ProcessCollector(namespace="", registry=registry)

    def _source_failed(self, name: str) -> None:
        self.source_errors.labels(source=name).inc()

    def observe_http(self, route: str, method: str, status: int, duration_s: float) -> None:
        key = (route, method, status)
        child = self._http_children.get(key)
        if child is None:
            upper = method.upper()
            child = self.http_duration.labels(
                route=self._route(route),
                method=upper if upper in HTTP_METHODS else OTHER,
                status_class=status_class(status),
            )
            _remember(self._http_children, key, child)
        child.observe(max(0.0, duration_s))

    def observe_job(self, task: str, outcome: str, duration_s: float) -> None:
        key = (task, outcome)
        child = self._job_children.get(key)
        if child is None:
            child = self.job_duration.labels(task=self._task(task), outcome=self._outcome(outcome))
            _remember(self._job_children, key, child)
        child.observe(max(0.0, duration_s))

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every series, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _items(mapping: Any, key: str, limit: int = 50) -> list[tuple[str, float]]:
    """Numeric ``(label, value)`` pairs of ``mapping[key]`` (a dict), at most ``limit``."""
    node = mapping.get(key) if isinstance(mapping, Mapping) else None
    if not isinstance(node, Mapping):
        return []
    out = []
    for label, value in list(node.items())[:limit]:
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append((str(label)[:64], float(value)))
    return out


class SourcesCollector(Collector):
    """Reads the registered ``stats()`` at scrape time.

    The snapshots (:mod:`perfgate.snapshots`) are read by attribute: ``pool``
    (:class:`PoolSnapshot`), ``cache`` (:class:`CacheSnapshot`), ``jobs``
    (:class:`JobsSnapshot`), ``journal`` (:class:`JournalSnapshot`) and ``http``
    (:class:`EdgeSnapshot`, the HTTP edge's counters); :data:`EXPORTED` names the series each
    field feeds. The gateway's ``stats()`` is still a dict (keys read, all optional):
    ``connections``, ``messages_sent``, ``messages_dropped``, ``messages_batched``,
    ``closes.{CODE: n}`` (heartbeat round trips are the ``perfgate_ws_heartbeat_rtt_seconds``
    histogram, observed as they happen).
    """

    def __init__(
        self,
        sources: Mapping[str, Source],
        system: Callable[[], SystemSample],
        alerts: Callable[[], list[Alert]],
        count_failure: Callable[[str], None],
        on_source_error: Callable[[str, Exception], None],
    ) -> None:
        self._sources = sources
        self._system = system
        self._alerts = alerts
        self._count_failure = count_failure
        self._on_source_error = on_source_error

    def describe(self) -> list[Metric]:
        return []  # the series depend on which sources are registered

    def _read(self, name: str) -> object | None:
        source = self._sources.get(name)
        if source is None:
            return None
        try:
            stats = source()
        except Exception as exc:
            self._count_failure(name)
            self._on_source_error(name, exc)
            return None
        if not isinstance(stats, Mapping) and not attrs.has(type(stats)):
            self._count_failure(name)
            return None
        return stats

    def collect(self) -> Iterator[Metric]:
        yield from self._system_metrics()
        pool, cache, jobs = self._read("pool"), self._read("cache"), self._read("jobs")
        journal, edge = self._read("journal"), self._read("http")
        if isinstance(pool, PoolSnapshot):
            yield from pool_series(pool)
        yield from self._gateway(self._read("gateway"))
        if isinstance(cache, CacheSnapshot):
            yield from cache_series(cache)
        if isinstance(jobs, JobsSnapshot):
            yield from jobs_series(jobs)
        if isinstance(journal, JournalSnapshot):
            yield from journal_series(journal)
        if isinstance(edge, EdgeSnapshot):
            yield from edge_series(edge)
        active = GaugeMetricFamily(
            "perfgate_alerts_active",
            "Active alerts, by rule and severity.",
            labels=["rule", "severity"],
        )
        counts: dict[tuple[str, str], int] = {}
        for alert in self._alerts():
            key = (alert.rule, alert.severity)
            counts[key] = counts.get(key, 0) + 1
        for (rule, severity), n in sorted(counts.items()):
            active.add_metric([rule, severity], n)
        yield active

    def _system_metrics(self) -> Iterator[Metric]:
        sample = self._system()
        for name, doc, value in (
            ("perfgate_host_cpu_ratio", "Host CPU busy, 0-1 of all cores.", sample.host_cpu_pct / 100),
            ("perfgate_host_memory_ratio", "Host memory in use, 0-1.", sample.host_memory_pct / 100),
            ("perfgate_threads", "Threads of the server process.", float(sample.threads)),
        ):  # fmt: skip
            yield GaugeMetricFamily(name, doc, value=value)

    def _gateway(self, stats: object) -> Iterator[Metric]:
        if not isinstance(stats, Mapping):
            return
        connections = _num(stats, "connections")
        if connections is not None:
            yield GaugeMetricFamily(
                "perfgate_ws_connections", "Open WebSocket connections.", value=connections
            )
        for key in ("messages_sent", "messages_dropped", "messages_batched"):
            value = _num(stats, key)
            if value is not None:
                doc = f"WebSocket messages {key.removeprefix('messages_')}."
                yield CounterMetricFamily(f"perfgate_ws_{key}", doc, value=value)
        closes = CounterMetricFamily(
            "perfgate_ws_closes", "WebSocket closes, by close code.", labels=["code"]
        )
        for code, value in _items(stats, "closes", limit=30):
            closes.add_metric([code], value)
        yield closes
        paced = _items(stats, "accept", limit=5)
        if paced:
            handshakes = CounterMetricFamily(
                "perfgate_ws_handshakes_paced",
                "Handshakes over [gateway] accept_rate_per_s: waited their turn, or refused 503.",
                labels=["outcome"],
            )
            for outcome, value in paced:
                handshakes.add_metric([outcome], value)
            yield handshakes
