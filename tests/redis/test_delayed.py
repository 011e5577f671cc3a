"""Delayed jobs and reruns in Redis: a due job moves to its stream exactly once whichever
instances race for it, a cancelled one never does, and a rerun job is queued again and no
longer expires. End to end: a delayed job and a retried one run through the shared queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from perfgate.config import TaskConfig
from perfgate.jobs.lifecycle import JobInput, JobState
from perfgate.redis.client import open_redis
from perfgate.redis.journal import RedisJournal
from perfgate.store import JobRecord
from tests.store.conftest import T0, FakeClock


@pytest.fixture
async def two(redis_url: str) -> AsyncIterator[tuple[RedisJournal, RedisJournal, FakeClock]]:
    clock = FakeClock()
    async with open_redis(redis_url) as a, open_redis(redis_url) as b:
        yield (
            RedisJournal(a, max_log_lines=5, result_ttl_s=60, clock=clock),
            RedisJournal(b, max_log_lines=5, result_ttl_s=60, clock=clock),
            clock,
        )


def delayed(job_id: str, due_in_s: float) -> JobRecord:
    return JobRecord(
        id=job_id,
        task="echo",
        args={},
        state=JobState.SCHEDULED,
        created_at=T0,
        run_at=T0 + due_in_s,
    )


async def stream_ids(journal: RedisJournal) -> list[str]:
    entries = await journal.client.xrange(journal.keys.stream("normal"))
    return [str(entry.field_values["id"]) for entry in entries]


async def test_a_due_job_is_moved_once_by_racing_instances(two: Any) -> None:
    a, b, clock = two
    for n in range(20):
        await a.create(delayed(f"d{n}", 10 + n % 2))
    assert await a.move_due() == (0, T0 + 10)
    assert await stream_ids(a) == []
    clock.advance(10.5)
    moved: list[int] = []

    async def race(journal: RedisJournal) -> None:
        while True:
            count, _ = await journal.move_due(limit=3)
            if not count:
                return
            moved.append(count)

    async with trio.open_nursery() as nursery:
        for journal in (a, b, a, b):
            nursery.start_soon(race, journal)
    assert sum(moved) == 10
    ids = await stream_ids(a)
    assert sorted(ids) == sorted(f"d{n}" for n in range(0, 20, 2))
    assert (await a.get("d0")).state == JobState.QUEUED  # type: ignore[union-attr]
    assert (await a.get("d1")).state == JobState.SCHEDULED  # type: ignore[union-attr]
    assert {j.id for j in (await a.list_jobs(state="scheduled", limit=100))[0]} == {
        f"d{n}" for n in range(1, 20, 2)
    }


async def test_a_cancelled_delayed_job_never_reaches_a_stream(two: Any) -> None:
    a, _, clock = two
    await a.create(delayed("c1", 5))
    assert (await a.cancel("c1")).state == JobState.CANCELLED  # type: ignore[union-attr]
    assert await a.client.zcard(f"{a.prefix}{{sched}}") == 0
    clock.advance(60)
    assert await a.move_due() == (0, None)
    assert await stream_ids(a) == []


async def test_a_rerun_job_is_queued_again_and_no_longer_expires(two: Any) -> None:
    a, _, _ = two
    await a.create(JobRecord(id="r1", task="echo", args={}, created_at=T0))
    await a.client.delete([a.keys.stream("normal")])  # as if claimed and acknowledged
    failed = await a.mark_finished("r1", "failed", error={"message": "boom"})
    assert failed is not None and await a.client.pttl(a.keys.job("r1")) > 0
    rerun = await a.apply("r1", JobInput.RERUN)
    assert rerun is not None and rerun.state == JobState.QUEUED and rerun.error is None
    assert await a.client.pttl(a.keys.job("r1")) == -1
    assert await stream_ids(a) == ["r1"]
    assert await a.client.zcard(f"{a.prefix}{{done}}") == 0
    assert await a.apply("r1", JobInput.RERUN) is None  # queued: no second entry
    assert await stream_ids(a) == ["r1"]


async def test_delayed_and_retried_jobs_run_through_the_shared_queue(
    service_factory: Any, redis_url: str
) -> None:
    service = await service_factory(
        server={"broker": redis_url}, tasks={"fails": TaskConfig(name="fails", command=("false",))}
    )
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        job = (await http.post("/v1/jobs", json={"task": "echo", "delay_s": 0.5})).json()
        assert job["state"] == "scheduled"
        done = (await http.get(f"/v1/jobs/{job['id']}?wait=20")).json()
        assert done["state"] == "succeeded" and done["started_at"] >= job["run_at"]
        failed = (await http.post("/v1/jobs?wait=20", json={"task": "fails"})).json()
        assert failed["state"] == "failed"
        assert (await http.post(f"/v1/jobs/{failed['id']}/retry")).json()["state"] == "queued"
        again = (await http.get(f"/v1/jobs/{failed['id']}?wait=20")).json()
        assert again["state"] == "dead" and again["attempts"] == 2
