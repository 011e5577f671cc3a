"""Peers, variants and idle costs in the result document, the report and the gate (pure)."""

from __future__ import annotations

import copy
import datetime as dt
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from rich.console import Console

from perfgate.bench import gate, results
from perfgate.bench.idle import idle_summary
from perfgate.bench.recorder import Recorder
from perfgate.bench.redis_server import url_for
from perfgate.bench.report import idle_rows, ratio_rows, render_html
from perfgate.bench.runner import RunSettings, merge_clients
from perfgate.bench.scenarios import SCENARIOS, jobclients
from perfgate.bench.suite import SuiteOptions
from perfgate.bench.terminal import print_table
from tests.bench import synthetic

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def entry(
    system: str, p50: float, rate: float, idle: dict[str, Any] | None = None
) -> dict[str, Any]:
    lat = {"p50": p50, "p90": p50 * 2, "p99": p50 * 4, "p999": p50 * 5, "max": p50 * 6}
    out: dict[str, Any] = {
        "system": system,
        "mode": "closed-loop",
        "offered_rate": rate,
        "achieved_rate": rate,
        "valid": True,
        "errors": 0,
        "requests": 100,
        "latency_ms": lat,
        "runs": [{"achieved_rate": rate, "offered_rate": rate, "latency_ms": lat}],
    }
    if idle is not None:
        out["idle"] = idle
    return out


def jobs_document() -> dict[str, Any]:
    subject = entry("perfgate", 10.0, 150.0)
    subject["variants"] = {
        "perfgate-client": entry("perfgate-client", 2.0, 900.0),
        "perfgate-redis": entry("perfgate-redis", 4.0, 600.0),
    }
    peers = {"jobs-throughput": {"celery": entry("celery", 2.0, 600.0)}}
    return results.build({"jobs-throughput": subject}, peers, {"mode": "open-loop"}, now=NOW)


def test_every_perfgate_variant_gets_its_ratio_against_every_peer() -> None:
    doc = jobs_document()
    results.validate(doc)
    celery = doc["peers"]["jobs-throughput"]["celery"]
    assert celery["ratio"]["throughput"] == pytest.approx(150.0 / 600.0)  # vs the subject
    ratios = celery["ratios"]
    assert set(ratios) == {"perfgate", "perfgate-client", "perfgate-redis"}
    assert ratios["perfgate-client"]["throughput"] == pytest.approx(1.5)
    assert ratios["perfgate-client"]["p50"] == pytest.approx(1.0)
    assert ratios["perfgate-redis"]["throughput"] == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore:No artists with labels")
def test_the_ratios_appear_in_the_html_and_terminal_reports() -> None:
    doc = jobs_document()
    rows = ratio_rows(doc)
    assert {(r["system"], r["peer"]) for r in rows} == {
        ("perfgate", "celery"),
        ("perfgate-client", "celery"),
        ("perfgate-redis", "celery"),
    }
    page = render_html(doc)
    assert "every way perfgate was measured" in page
    assert "perfgate-redis" in page
    out = io.StringIO()
    print_table(doc, Console(file=out, width=200))
    text = out.getvalue()
    assert "perfgate-client" in text
    assert "1.50" in text  # perfgate-client/celery throughput
    assert "jobs-throughput*" in text
    assert "* closed loop" in text


def test_a_malformed_variant_is_rejected_by_validation() -> None:
    doc = jobs_document()
    broken = copy.deepcopy(doc)
    broken["scenarios"]["jobs-throughput"]["variants"]["perfgate-client"]["achieved_rate"] = "x"
    with pytest.raises(results.ResultError, match=r"variants\.perfgate-client\.achieved_rate"):
        results.validate(broken)
    broken = copy.deepcopy(doc)
    broken["scenarios"]["jobs-throughput"]["variants"] = []
    with pytest.raises(results.ResultError, match="variants must be an object"):
        results.validate(broken)


def test_idle_summary_is_rss_delta_per_connection_and_cpu_share() -> None:
    block = idle_summary(
        connections=2000,
        fresh_rss_bytes=50_000_000,
        rss_bytes=90_960_000,
        cpu_s=0.25,
        window_s=5.0,
    )
    assert block["rss_delta_bytes"] == 40_960_000
    assert block["bytes_per_connection"] == pytest.approx(20_480.0)
    assert block["cpu_percent"] == pytest.approx(5.0)
    none = idle_summary(connections=0, fresh_rss_bytes=1, rss_bytes=2, cpu_s=0.0, window_s=1.0)
    assert none["bytes_per_connection"] is None


@pytest.mark.filterwarnings("ignore:No artists with labels")
def test_idle_costs_get_ratios_and_a_table() -> None:
    mine = {"bytes_per_connection": 33_000.0, "cpu_percent": 2.0, "connections": 2000}
    theirs = {"bytes_per_connection": 16_500.0, "cpu_percent": 0.0, "connections": 2000}
    doc = results.build(
        {"ws-idle": entry("perfgate", 50.0, 400.0, mine)},
        {"ws-idle": {"websockets": entry("websockets", 40.0, 400.0, theirs)}},
        {},
        now=NOW,
    )
    ratio = doc["peers"]["ws-idle"]["websockets"]["ratio"]
    assert ratio["bytes_per_connection"] == pytest.approx(2.0)
    assert ratio["idle_cpu"] is None  # the peer measured no CPU at all: no ratio, no crash
    rows = idle_rows(doc)
    assert [(r["system"], r["kib_per_connection"]) for r in rows] == [
        ("perfgate", pytest.approx(33_000 / 1024)),
        ("websockets", pytest.approx(16_500 / 1024)),
    ]
    assert "Idle connections" in render_html(doc)


def test_summarise_idle_takes_medians_over_runs() -> None:
    runs = [
        {"connections": 100, "bytes_per_connection": b, "cpu_percent": c}
        for b, c in ((10.0, 1.0), (30.0, 9.0), (20.0, 2.0))
    ]
    summary = results.summarise_idle(runs)
    assert summary["bytes_per_connection"] == 20.0
    assert summary["cpu_percent"] == 2.0


def _client_result(completed: int, errors: int) -> dict[str, Any]:
    recorder = Recorder()
    recorder.schedule_start_s, recorder.schedule_end_s = 0.0, 2.0
    for i in range(completed + errors):
        recorder.on_send(i * 0.01, i * 0.01)
        if i < completed:
            recorder.on_done(i * 0.01, i * 0.01, i * 0.01 + 0.005)
        else:
            recorder.on_timeout(i * 0.01, i * 0.01, 2.0)
    return {"requests": recorder.to_json()}


def test_closed_loop_throughput_counts_completed_jobs_only() -> None:
    # 32 callers whose jobs time out are not 32 jobs done
    settings = RunSettings("jobs-throughput", 20.0, 2.0, 32, closed_loop=True)
    outcome = merge_clients(settings, 0.0, [_client_result(100, 32), _client_result(60, 0)])
    assert outcome.summary["achieved_rate"] == pytest.approx(160 / 2.0)
    assert outcome.summary["offered_rate"] == outcome.summary["achieved_rate"]
    assert outcome.summary["errors"] == 32


def test_the_gate_does_not_call_a_closed_loop_throughput_change_a_settings_change() -> None:
    baseline = synthetic.result(seed=1)
    current = synthetic.result(seed=2, throughput_scale=0.7)
    for doc in (baseline, current):
        jobs = doc["scenarios"]["jobs"]
        jobs["mode"] = "closed-loop"
        jobs["offered_rate"] = jobs["achieved_rate"]  # closed loop: offered = achieved
    report = gate.evaluate(baseline, current)
    assert not [p for p in report.problems if "offered rate differs" in p]
    assert any(c.scenario == "jobs" and c.metric == "throughput" for c in report.comparisons)


def test_scenario_settings_for_the_new_scenarios() -> None:
    options = SuiteOptions(idle_connections=300, idle_window_s=7.0)
    throughput = options.settings_for("jobs-throughput")
    assert throughput.closed_loop and throughput.connections == 32
    idle = options.settings_for("ws-idle")
    assert idle.closed_loop and idle.subscribers == 300 and idle.duration_s == 7.0
    assert options.settings_for("ws-idle", 1.0).duration_s == 1.0  # the warm-up
    assert options.settings_for("jobs").subscribers == 0
    assert not options.settings_for("jobs").closed_loop
    assert {"jobs-throughput", "ws-idle"} <= set(SCENARIOS)


def test_variants_and_redis_follow_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobclients, "perfgate_client_available", lambda: False)
    assert SuiteOptions(peers=False).variants_for("jobs") == []
    options = SuiteOptions(peers=True, scenarios=("jobs",))
    assert options.variants_for("jobs") == ["perfgate-redis"]
    assert options.variants_for("http") == []
    assert options.needs_redis()
    assert options.peers_for("jobs") == ["processpool", "celery", "arq"]
    only = SuiteOptions(peers=True, scenarios=("jobs",), only_peers=("processpool",))
    assert only.variants_for("jobs") == [] and only.peers_for("jobs") == ["processpool"]
    assert not only.needs_redis()
    assert SuiteOptions(subject="celery", scenarios=("jobs",)).needs_redis()
    assert url_for("redis://127.0.0.1:7000", "arq") == "redis://127.0.0.1:7000/1"


def test_the_perfgate_client_hook_turns_on_when_the_module_is_importable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobclients, "perfgate_client_available", lambda: True)
    options = SuiteOptions(peers=True, scenarios=("jobs", "jobs-throughput"))
    assert options.variants_for("jobs") == ["perfgate-client", "perfgate-redis"]
    assert options.systems_for("jobs-throughput") == 1 + 3 + 2


async def test_a_shared_job_client_with_its_own_nursery_runs_a_whole_client_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # perfgate.client's AsyncClient (like any trio client) holds a nursery from prepare() to
    # finish(): closing it inside another cancel scope is an error trio refuses
    import json
    import time

    import trio

    from perfgate.bench import loadgen
    from perfgate.bench.scenarios import jobs

    calls: list[Any] = []

    @asynccontextmanager
    async def fake_caller(
        client: str, http_url: str, redis_url: str, callers: int
    ) -> AsyncIterator[jobclients.Call]:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)

            async def call(args: dict[str, Any], timeout_s: float) -> Any:
                calls.append(args)
                await trio.lowlevel.checkpoint()
                return args

            yield call
            nursery.cancel_scope.cancel()

    monkeypatch.setattr(jobs, "open_caller", fake_caller)
    spec = loadgen.ClientSpec(
        "jobs", "http://127.0.0.1:9", "", rate_per_s=20.0, duration_s=0.2, client="fake"
    )
    start = json.dumps({"start_at": time.monotonic() + 0.05})

    async def read_line() -> str:
        return start

    result = await loadgen.run_client(spec, read_line)
    assert result["requests"]["errors"] == 0
    assert result["requests"]["completed"] == len(calls) == 4
