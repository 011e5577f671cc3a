"""The peers added for the jobs, http and WebSocket scenarios: each starts, answers through
its scenario's harness (real client processes), and stops leaving no process behind.

Short runs of a few requests; nothing here asserts on how fast anything is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psutil
import pytest

from perfgate.bench import results
from perfgate.bench.cli import bench_main
from perfgate.bench.redis_server import redis_serving, url_for
from perfgate.bench.runner import RunOutcome, RunSettings, run_once
from perfgate.bench.server import PeerOptions, Target, serving


def _gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@asynccontextmanager
async def peer(
    name: str, tmp_path: Path, redis_url: str = ""
) -> AsyncIterator[tuple[Target, list[psutil.Process]]]:
    """Serve peer ``name``; afterwards check that it and every process it started are gone."""
    async with serving(name, tmp_path, peer_options=PeerOptions(2, redis_url)) as target:
        assert target.pid is not None
        root = psutil.Process(target.pid)
        tree = [root, *root.children(recursive=True)]
        yield target, tree
    leftovers = [p.pid for p in tree if not _gone(p)]
    assert leftovers == [], f"{name} left processes behind: {leftovers}"


def settings(scenario: str, **overrides: object) -> RunSettings:
    base: dict[str, object] = dict(
        scenario=scenario, rate_per_s=4.0, duration_s=0.5, connections=1, processes=1
    )
    base.update(timeout_s=5.0, **overrides)
    return RunSettings(**base)  # type: ignore[arg-type]


def assert_clean(outcome: RunOutcome, requests: int) -> None:
    assert outcome.summary["requests"] == requests
    assert outcome.summary["errors"] == 0, outcome.summary["error_samples"]


@pytest.mark.parametrize("name", ["celery", "arq"])
async def test_a_job_queue_peer_runs_jobs_through_its_own_client(name: str, tmp_path: Path) -> None:
    async with (
        redis_serving() as base,
        peer(name, tmp_path, url_for(base, name)) as (target, tree),
    ):
        assert target.client == name
        assert target.redis_url == url_for(base, name)
        assert len(tree) >= 3  # the peer and its 2 worker processes
        assert_clean(await run_once(settings("jobs"), target), 2)
        closed = await run_once(
            settings("jobs-throughput", closed_loop=True, connections=4, duration_s=0.3),
            target,
        )
        assert closed.summary["mode"] == "closed-loop"
        assert closed.summary["errors"] == 0, closed.summary["error_samples"]
        assert closed.summary["achieved_rate"] > 0


async def test_quart_trio_peer_serves_healthz(tmp_path: Path) -> None:
    async with peer("quart-trio", tmp_path) as (target, _):
        assert_clean(await run_once(settings("http"), target), 2)


async def test_websockets_trio_peer_serves_churn_fanout_and_idle(tmp_path: Path) -> None:
    async with peer("websockets-trio", tmp_path) as (target, _):
        assert target.ws_url != target.http_url  # WebSocket on its own port
        assert_clean(await run_once(settings("ws-churn"), target), 2)
        fanout = await run_once(settings("ws-fanout", subscribers=3), target)
        assert fanout.summary["deliveries"] == 2 * 3
        assert fanout.summary["lost"] == 0
        assert target.pid is not None
        fresh_rss = psutil.Process(target.pid).memory_info().rss
        idle = await run_once(
            settings("ws-idle", closed_loop=True, subscribers=20, duration_s=0.3),
            target,
            fresh_rss_bytes=fresh_rss,
        )
        assert idle.summary["errors"] == 0, idle.summary["error_samples"]
        block = idle.summary["idle"]
        assert block["connections"] == 20
        assert block["fresh_rss_bytes"] == fresh_rss
        assert block["bytes_per_connection"] == block["rss_delta_bytes"] / 20
        assert block["cpu_percent"] >= 0


def test_jobs_with_perfgate_on_redis_beside_a_peer_end_to_end(tmp_path: Path) -> None:
    # perfgate, a second perfgate on the bench's redis-server, one peer: the variant is
    # measured in the same interleaved run and the peer carries a ratio for each
    out = tmp_path / "r"
    code = bench_main(
        "jobs --peer processpool --peer perfgate-redis --runs 1 --duration 0.5 --warmup 0 "
        f"--rate 4 --timeout 5 --out {out}".split()
    )
    [path] = sorted(out.glob("*.json"))
    doc = results.read(path)  # validates the schema
    assert code in (0, 2)
    jobs = doc["scenarios"]["jobs"]
    assert list(jobs["variants"]) == ["perfgate-redis"]
    assert jobs["variants"]["perfgate-redis"]["requests"] == 2
    assert list(doc["peers"]["jobs"]) == ["processpool"]
    ratios = doc["peers"]["jobs"]["processpool"]["ratios"]
    assert set(ratios) == {"perfgate", "perfgate-redis"}
    assert "perfgate-redis" in path.with_suffix(".html").read_text()


def test_bench_refuses_more_idle_connections_than_open_files(tmp_path: Path) -> None:
    # more than any limit the bench can raise itself to (2**20 where the hard one is infinite)
    code = bench_main(["ws-idle", "--idle-connections", str(10**9), "--out", str(tmp_path)])
    assert code == 2
    assert not list(tmp_path.glob("*.json"))


def test_bench_refuses_an_unknown_peer(tmp_path: Path) -> None:
    assert bench_main(["jobs", "--peer", "rq", "--out", str(tmp_path)]) == 2
