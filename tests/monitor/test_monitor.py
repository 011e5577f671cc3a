"""The Monitor: hooks feed /v1/stats and /metrics; the sampler loop publishes snapshots and alerts."""

from __future__ import annotations

import json
import os
from typing import Any

import attrs
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from perfgate.config import MonitorConfig
from perfgate.monitor import ALERTS_CHANNEL, STATS_CHANNEL, Monitor
from perfgate.monitor.system import FDS_EVERY, SystemSample, SystemSampler
from tests.monitor.snapshots import cache_snapshot, pool_snapshot


class FakeSampler(SystemSampler):
    """Host figures the test decides (psutil is exercised in test_system_sampler_reads_psutil)."""

    def __init__(self) -> None:
        self.next = SystemSample(host_cpu_pct=10.0, host_memory_pct=40.0, process_rss_bytes=1 << 20)
        self.latest = self.next

    def sample(self) -> SystemSample:
        self.latest = self.next
        return self.latest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


POOL = pool_snapshot()
GATEWAY = {
    "connections": 12,
    "messages_sent": 500,
    "messages_dropped": 0,
    "messages_batched": 30,
    "closes": {1001: 3, 4008: 1},
    "accept": {"waited": 7, "refused": 2},
    "heartbeat_rtt_ms": {"p50": 1.5, "p99": 4.0},
}
CACHE = cache_snapshot()


def make_monitor(**config: Any) -> tuple[Monitor, Clock, FakeSampler]:
    clock, sampler = Clock(), FakeSampler()
    monitor = Monitor(MonitorConfig(**config), clock=clock, system=sampler, raise_after_s=0.0)
    return monitor, clock, sampler


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_snapshot_has_routes_tasks_delivery_system_and_sources() -> None:
    monitor, clock, _ = make_monitor()
    monitor.add_source("pool", lambda: POOL)
    monitor.add_source("gateway", lambda: GATEWAY)
    monitor.add_source("cache", lambda: CACHE)
    for i in range(100):
        monitor.observe_http("/v1/jobs/<job_id>", "get", 500 if i < 10 else 200, 0.002)
    monitor.observe_http("/v1/jobs", "POST", 202, 0.004)
    monitor.observe_job("sha256", "succeeded", 0.5)
    monitor.observe_job("sha256", "failed", 1.5)
    monitor.observe_ws_delivery(0.001)
    clock.now += 10
    snap = monitor.snapshot()
    json.dumps(snap, allow_nan=False)  # JSON-safe all the way down
    route = snap["http"]["routes"]["GET /v1/jobs/<job_id>"]
    assert route["count"] == 100 and route["error_rate_pct"] == 10.0
    assert route["throughput_per_s"] == pytest.approx(10.0)
    assert route["p99_ms"] == pytest.approx(2.0, rel=0.01)
    assert snap["http"]["total"]["count"] == 101
    assert snap["jobs"]["tasks"]["sha256"]["errors"] == 1
    assert snap["ws_delivery"]["count"] == 1
    assert snap["pool"] == json.loads(json.dumps(attrs.asdict(POOL)))
    assert snap["gateway"]["closes"] == {"1001": 3, "4008": 1}
    assert snap["cache"]["l1"]["hits"] == 90
    assert snap["system"]["host_memory_pct"] == 40.0
    assert snap["alerts"] == [] and snap["recommendations"] == []


def test_sources_that_fail_or_lie_are_left_out_and_counted() -> None:
    monitor, _, _ = make_monitor()

    def broken() -> dict[str, Any]:
        raise RuntimeError("pool is gone")

    monitor.add_source("pool", broken)
    monitor.add_source("gateway", lambda: ["not", "a", "dict"])  # type: ignore[arg-type, return-value]
    monitor.add_source("cache", lambda: {"l1": {"hits": "many"}, "l3": {}})
    snap = monitor.snapshot()
    assert snap["pool"] is None and snap["gateway"] is None
    body, _ = monitor.render_metrics()
    found = samples(body)
    assert found[("perfgate_monitor_source_errors_total", (("source", "pool"),))] >= 2
    assert found[("perfgate_monitor_source_errors_total", (("source", "gateway"),))] >= 2
    assert not any(
        name.startswith("perfgate_cache_hits_total") and v for (name, _), v in found.items()
    )


def test_metrics_expose_every_series_with_bounded_labels() -> None:
    monitor, _, _ = make_monitor()
    monitor.add_source("pool", lambda: POOL)
    monitor.add_source("gateway", lambda: GATEWAY)
    monitor.add_source("cache", lambda: CACHE)
    monitor.observe_http("/v1/jobs/<job_id>", "GET", 404, 0.003)
    monitor.observe_http("/v1/jobs/<job_id>", "BREW", 200, 0.003)
    monitor.observe_job("echo", "succeeded", 0.02)
    monitor.observe_heartbeat_rtt(0.004)
    monitor.observe_ws_delivery(0.002)
    monitor.http_started()
    body, content_type = monitor.render_metrics()
    assert content_type.startswith("text/plain")
    found = samples(body)
    http = "perfgate_http_request_duration_seconds_count"
    assert (
        found[(http, (("method", "GET"), ("route", "/v1/jobs/<job_id>"), ("status_class", "4xx")))]
        == 1
    )
    assert (
        found[
            (http, (("method", "other"), ("route", "/v1/jobs/<job_id>"), ("status_class", "2xx")))
        ]
        == 1
    )
    expected = {
        ("perfgate_http_requests_in_flight", ()): 1,
        ("perfgate_job_duration_seconds_count", (("outcome", "succeeded"), ("task", "echo"))): 1,
        ("perfgate_ws_heartbeat_rtt_seconds_count", ()): 1,
        ("perfgate_ws_delivery_seconds_count", ()): 1,
        ("perfgate_pool_workers", (("state", "busy"),)): 3,
        ("perfgate_pool_workers", (("state", "idle"),)): 1,
        ("perfgate_pool_queue_depth", (("priority", "normal"),)): 5,
        ("perfgate_pool_jobs_total", (("outcome", "failed"),)): 2,
        ("perfgate_pool_job_retries_total", ()): 3,
        ("perfgate_pool_worker_restarts_total", (("reason", "crash"),)): 2,
        ("perfgate_ws_connections", ()): 12,
        ("perfgate_ws_messages_sent_total", ()): 500,
        ("perfgate_ws_messages_dropped_total", ()): 0,
        ("perfgate_ws_messages_batched_total", ()): 30,
        ("perfgate_ws_closes_total", (("code", "4008"),)): 1,
        ("perfgate_ws_handshakes_paced_total", (("outcome", "waited"),)): 7,
        ("perfgate_ws_handshakes_paced_total", (("outcome", "refused"),)): 2,
        ("perfgate_cache_hits_total", (("tier", "l1"),)): 90,
        ("perfgate_cache_hits_total", (("tier", "l2"),)): 3,
        ("perfgate_cache_bytes", (("tier", "l1"),)): 2048,
        ("perfgate_host_memory_ratio", ()): 0.4,
    }
    for key, value in expected.items():
        assert found[key] == value, key
    # The standard process collector, under the standard names.
    assert found[("process_resident_memory_bytes", ())] > 0
    assert found[("process_cpu_seconds_total", ())] >= 0
    assert all(name.startswith(("perfgate_", "process_")) for name, _ in found)
    assert not any(name.startswith("perfgate_process_") for name, _ in found)
    assert not [name for name, _ in found if name.endswith(("_percent", "_pct", "_ms"))]


def test_many_raw_paths_cannot_explode_the_label_space() -> None:
    monitor, _, _ = make_monitor()
    for i in range(1000):
        monitor.observe_http(f"/v1/jobs/{i}", "GET", 200, 0.001)
    found = samples(monitor.render_metrics()[0])
    routes = {
        labels for name, labels in found if name == "perfgate_http_request_duration_seconds_count"
    }
    assert len(routes) <= 200
    assert len(monitor.snapshot()["http"]["routes"]) <= 64


def test_two_monitors_do_not_share_a_registry() -> None:
    first, _, _ = make_monitor()
    second, _, _ = make_monitor()
    first.observe_http("/a", "GET", 200, 0.001)
    assert b'route="/a"' in first.render_metrics()[0]
    assert b'route="/a"' not in second.render_metrics()[0]


def test_tick_raises_alerts_and_recommendations_from_the_figures() -> None:
    monitor, clock, sampler = make_monitor(queue_depth_alert=10)
    pool = {"workers": {"idle": 0, "busy": 4, "total": 4}, "queue": {"normal": 25}}
    monitor.add_source("pool", lambda: pool)
    sampler.next = SystemSample(host_cpu_pct=95.0, host_memory_pct=40.0)
    snapshot, events = monitor.tick()
    assert {(e.kind, e.alert.key) for e in events} == {
        ("raised", "cpu:host"),
        ("raised", "queue_depth:pool"),
    }
    assert {a["id"] for a in snapshot["alerts"]} == {"cpu:host", "queue_depth:pool"}
    assert [r["code"] for r in snapshot["recommendations"]] == ["add-capacity"]
    sampler.next = SystemSample(host_cpu_pct=5.0, host_memory_pct=40.0)
    pool["queue"] = {"normal": 0}
    clock.now += 1
    assert monitor.tick()[1] == []  # hysteresis in time: not cleared yet
    clock.now += 11
    _, events = monitor.tick()
    assert {(e.kind, e.alert.key) for e in events} == {
        ("cleared", "cpu:host"),
        ("cleared", "queue_depth:pool"),
    }


def test_tick_finds_a_latency_regression() -> None:
    monitor, clock, _ = make_monitor(window_s=60.0)
    for second in range(120):
        slow = 3.0 if second >= 65 else 1.0  # the baseline window is [1005, 1065) s
        for i in range(20):
            monitor.observe_http("/v1/jobs", "POST", 202, (0.005 + i * 0.0002) * slow)
        clock.now += 1.0
    snapshot, events = monitor.tick()
    assert [r["metric"] for r in snapshot["regressions"]] == ["p99_ms"]
    assert snapshot["regressions"][0]["severity"] == "critical"
    assert any(e.alert.rule == "regression" for e in events)


def test_message_rate_from_the_gateway_counter() -> None:
    monitor, clock, _ = make_monitor()
    sent = {"messages_sent": 100}
    monitor.add_source("gateway", lambda: sent)
    monitor.tick()
    sent["messages_sent"] = 400
    clock.now += 2
    snapshot, _ = monitor.tick()
    assert snapshot["rates"]["ws_messages_sent_per_s"] == 150.0


def test_system_sampler_reads_psutil() -> None:
    sample = SystemSampler().sample()
    assert sample.process_rss_bytes > 0 and sample.threads >= 1
    assert 0 <= sample.host_memory_pct <= 100 and sample.open_fds and sample.open_fds > 0


def test_open_fds_are_counted_once_every_few_samples() -> None:
    """Listing /proc/self/fd costs one entry per socket: at 10,000 connections it was most
    of a sample's cost, so it is counted once every FDS_EVERY samples."""
    sampler = SystemSampler()
    first = sampler.sample().open_fds
    assert first is not None
    pipes = [os.pipe() for _ in range(5)]
    try:
        between = [sampler.sample().open_fds for _ in range(FDS_EVERY - 1)]
        assert between == [first] * (FDS_EVERY - 1)  # the last count, repeated
        counted = sampler.sample().open_fds
        assert counted is not None and counted >= first + 10
    finally:
        for read_end, write_end in pipes:
            os.close(read_end)
            os.close(write_end)


async def test_run_publishes_snapshots_and_alert_events(autojump_clock: trio.abc.Clock) -> None:
    sampler = FakeSampler()
    monitor = Monitor(
        MonitorConfig(sample_interval_s=1.0),
        clock=trio.current_time,
        system=sampler,
        raise_after_s=0.0,
        clear_after_s=2.0,
    )
    published: list[tuple[str, Any]] = []

    async def publish(channel: str, data: Any) -> None:
        published.append((channel, data))

    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.run, publish)
        await trio.sleep(2.5)
        sampler.next = SystemSample(host_cpu_pct=99.0)
        await trio.sleep(3.0)
        sampler.next = SystemSample(host_cpu_pct=1.0)
        await trio.sleep(5.0)
        nursery.cancel_scope.cancel()
    stats = [data for channel, data in published if channel == STATS_CHANNEL]
    alerts = [data for channel, data in published if channel == ALERTS_CHANNEL]
    assert len(stats) == 10
    assert [(a["event"], a["alert"]["id"]) for a in alerts] == [
        ("raised", "cpu:host"),
        ("cleared", "cpu:host"),
    ]
    assert any(s["alerts"] for s in stats) and not stats[-1]["alerts"]


async def test_run_survives_a_failing_or_stuck_publisher(autojump_clock: trio.abc.Clock) -> None:
    monitor = Monitor(MonitorConfig(), clock=trio.current_time, system=FakeSampler())
    calls: list[str] = []
    times: list[float] = []

    async def stuck() -> None:
        await trio.sleep_forever()

    def publish(channel: str, data: Any) -> Any:
        calls.append(channel)
        times.append(trio.current_time())
        if len(calls) == 1:
            raise ConnectionError("broker down")
        if len(calls) == 2:
            return stuck()  # a stuck broker: abandoned after one interval
        return None

    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.run, publish)
        await trio.sleep(5.5)
        nursery.cancel_scope.cancel()
    # One publish a second: the failure was skipped, the stuck one abandoned after exactly one
    # interval (t=2 to 3), and no tick was lost or doubled.
    assert calls == ["$sys:stats"] * 5
    assert times == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_remembered_series_stay_bounded_and_keep_counting() -> None:
    """Observations find their labelled series through a memo of raw label values: invented
    methods past its bound start it over, and every observation still lands in its series."""
    from perfgate.monitor.metrics import CHILDREN_MAX

    monitor, _, _ = make_monitor()
    for i in range(CHILDREN_MAX + 10):
        monitor.observe_http("/v1/jobs", f"M{i}", 200, 0.001)
        monitor.observe_http("/v1/jobs", "post", 202, 0.001)
    assert len(monitor.metrics._http_children) <= CHILDREN_MAX
    found = samples(monitor.render_metrics()[0])
    http = "perfgate_http_request_duration_seconds_count"
    by_method = {
        method: found[(http, (("method", method), ("route", "/v1/jobs"), ("status_class", "2xx")))]
        for method in ("other", "POST")
    }
    assert by_method == {"other": CHILDREN_MAX + 10, "POST": CHILDREN_MAX + 10}
