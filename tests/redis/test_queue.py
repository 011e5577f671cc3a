"""The Redis job queue's claim, lease and reclaim rules, against a real redis-server.

The scripts are driven directly for the rules (which consumer gets which entry, when), and
:class:`RedisJobQueue` with a stand-in pool for what an instance does with what it claims.
Leases here are a few hundred milliseconds; the tests wait past them, never time anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from perfgate.pool import JobSpec
from perfgate.pool.job import JobHandle, JobOutcome
from perfgate.readiness import Phase, Readiness
from perfgate.redis import codec
from perfgate.redis.client import open_redis
from perfgate.redis.journal import RedisJournal
from perfgate.redis.keys import GROUP
from perfgate.redis.queue import RedisJobQueue
from perfgate.redis.scripts.queue import CLAIM_LUA, REFRESH_LUA, STALE_CONSUMER_MS
from perfgate.store import JobRecord

# Long enough that a stall of a loaded machine between a refresh and the next claim (these run
# against a real redis-server, on its clock) cannot pass for a lapsed lease.
LEASE_MS = 2000
LAPSED_S = LEASE_MS / 1000 + 0.5


@pytest.fixture
async def journal(redis_url: str) -> AsyncIterator[RedisJournal]:
    async with open_redis(redis_url) as client:
        yield RedisJournal(client, max_log_lines=10, result_ttl_s=60)


async def create(journal: RedisJournal, job_id: str, priority: str = "normal") -> None:
    record = JobRecord(id=job_id, task="echo", args={}, priority=priority, created_at=1.0)
    await journal.create(record)


async def claim(
    journal: RedisJournal,
    consumer: str,
    *,
    count: int = 10,
    reclaim_ms: int = 0,
    stale_ms: int = STALE_CONSUMER_MS,
) -> list[JobRecord]:
    script = journal.client.register_script(CLAIM_LUA)
    reply: Any = await script(
        args=[journal.prefix, GROUP, consumer, count, LEASE_MS, reclaim_ms, stale_ms]
    )
    claimed, _tails = reply
    return [codec.decode_record(str(i), codec.pairs(fields)) for i, fields in claimed]


async def refresh(journal: RedisJournal, consumer: str, *ids: str) -> list[str]:
    script = journal.client.register_script(REFRESH_LUA)
    reply: Any = await script(args=[journal.prefix, GROUP, consumer, LEASE_MS, *ids])
    return [str(state) for state in reply]


async def test_each_entry_goes_to_one_consumer_high_priority_first(journal: RedisJournal) -> None:
    await create(journal, "low1", "low")
    await create(journal, "norm1")
    await create(journal, "high1", "high")
    [first] = await claim(journal, "a", count=1)
    assert first.id == "high1"
    rest = await claim(journal, "b")
    assert [r.id for r in rest] == ["norm1", "low1"]
    assert await claim(journal, "a") == []


async def test_a_refreshed_lease_is_never_reclaimed_a_lapsed_one_is(journal: RedisJournal) -> None:
    await create(journal, "j1")
    assert [r.id for r in await claim(journal, "a")] == ["j1"]
    await journal.mark_running("j1")
    for _ in range(6):  # a whole lease, refreshed every sixth of it
        await trio.sleep(LEASE_MS / 6000)
        assert await refresh(journal, "a", "j1") == ["running"]
        assert await claim(journal, "b", reclaim_ms=LEASE_MS) == []
    await trio.sleep(LAPSED_S)  # "a" stopped refreshing: it died
    [again] = await claim(journal, "b", reclaim_ms=LEASE_MS)
    assert again.id == "j1" and again.state == "queued" and again.attempts == 1
    assert await refresh(journal, "a", "j1") == ["lost"]
    assert await refresh(journal, "b", "j1") == ["queued"]
    assert (await journal.mark_running("j1")).attempts == 2  # type: ignore[union-attr]


async def test_finishing_acknowledges_the_entry_and_drops_the_lease(
    journal: RedisJournal,
) -> None:
    await create(journal, "f1")
    await claim(journal, "a")
    await journal.mark_running("f1")
    await journal.mark_finished("f1", "succeeded", result=7)
    assert await journal.client.xlen(journal.keys.stream("normal")) == 0
    assert not await journal.client.exists([f"{journal.prefix}{{lease}}:f1"])
    assert await refresh(journal, "a", "f1") == ["succeeded"]
    await trio.sleep(LAPSED_S)
    assert await claim(journal, "b", reclaim_ms=LEASE_MS) == []


async def test_a_job_cancelled_while_queued_is_skipped(journal: RedisJournal) -> None:
    await create(journal, "c1")
    await create(journal, "c2")
    await journal.cancel("c1")
    assert [r.id for r in await claim(journal, "a")] == ["c2"]
    assert await journal.client.xlen(journal.keys.stream("normal")) == 1  # c2's only


async def test_the_group_is_recreated_after_redis_lost_its_data(journal: RedisJournal) -> None:
    await create(journal, "g1")
    assert [r.id for r in await claim(journal, "a")] == ["g1"]
    await journal.client.flushall()
    await create(journal, "g2")
    assert [r.id for r in await claim(journal, "a")] == ["g2"]


async def test_stopped_consumers_with_nothing_pending_leave_the_group(
    journal: RedisJournal,
) -> None:
    await create(journal, "s1")
    await create(journal, "s2")
    await claim(journal, "busy", count=1)  # holds s1
    await claim(journal, "idle", count=1)
    await journal.mark_finished("s2", "succeeded")  # acknowledged: "idle" holds nothing
    consumers: Any = await journal.client.xinfo_consumers(journal.keys.stream("normal"), GROUP)
    assert {c["name"] for c in consumers} == {"busy", "idle"}
    await trio.sleep(0.05)
    await claim(journal, "me", reclaim_ms=60_000, stale_ms=10)
    consumers = await journal.client.xinfo_consumers(journal.keys.stream("normal"), GROUP)
    names = {c["name"] for c in consumers}
    assert "busy" in names and "idle" not in names


class FakePool:
    """What the queue needs of a pool; records what it was given."""

    def __init__(self) -> None:
        self.handles: dict[str, JobHandle] = {}
        self.cancelled: list[str] = []

    def submit(self, spec: JobSpec) -> JobHandle:
        self.handles[spec.id] = JobHandle(spec)
        return self.handles[spec.id]

    def cancel(self, job_id: str) -> bool:
        self.cancelled.append(job_id)
        return True

    def queue_room(self) -> int:
        return 100


async def started_queue(
    nursery: trio.Nursery, journal: RedisJournal, consumer: str
) -> tuple[RedisJobQueue, FakePool]:
    pool = FakePool()
    queue = RedisJobQueue(
        journal.client,
        pool=pool,  # type: ignore[arg-type]
        journal=journal,
        readiness=Readiness(phase=Phase.READY),
        lease_s=LEASE_MS / 1000,
        capacity=4,
        consumer=consumer,
        poll_s=0.02,
    )
    await nursery.start(queue.run)
    return queue, pool


async def until(predicate: Any) -> None:
    with trio.fail_after(10):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_queue_runs_claimed_jobs_and_stops_those_cancelled_elsewhere(
    journal: RedisJournal,
) -> None:
    async with trio.open_nursery() as nursery:
        queue, pool = await started_queue(nursery, journal, "a")
        await create(journal, "q1")
        queue.submit(JobSpec(id="q1", task="echo"))
        await until(lambda: "q1" in pool.handles)
        await journal.mark_running("q1")
        await journal.cancel("q1")  # through another instance
        await until(lambda: "q1" in pool.cancelled)
        assert queue.stats()["owned"] == 0
        nursery.cancel_scope.cancel()


async def test_queue_writes_an_outcome_the_journal_missed(journal: RedisJournal) -> None:
    async with trio.open_nursery() as nursery:
        queue, pool = await started_queue(nursery, journal, "a")
        await create(journal, "m1")
        queue.submit(JobSpec(id="m1", task="echo"))
        await until(lambda: "m1" in pool.handles)
        await journal.mark_running("m1")
        # The pool finished it, but its final event never reached Redis (Redis was away).
        pool.handles["m1"]._finish(JobOutcome(state="succeeded", result={"ok": 1}, attempts=1))
        with trio.fail_after(10):
            while (record := await journal.get("m1")) is None or not record.finished:  # noqa: ASYNC110
                await trio.sleep(0.02)
        assert record.state == "succeeded" and record.result == {"ok": 1}
        nursery.cancel_scope.cancel()


async def test_a_taken_over_job_is_stopped_and_its_events_ignored(journal: RedisJournal) -> None:
    async with trio.open_nursery() as nursery:
        queue, pool = await started_queue(nursery, journal, "a")
        await create(journal, "t1")
        queue.submit(JobSpec(id="t1", task="echo"))
        await until(lambda: "t1" in pool.handles)
        # Another instance holds the lease now (ours lapsed while we were cut off).
        await journal.client.set(f"{journal.prefix}{{lease}}:t1", "b")
        await until(lambda: "t1" in pool.cancelled)
        assert not queue.owns_events("t1") and queue.stats()["taken_over"] == 1
        nursery.cancel_scope.cancel()


async def test_an_instance_claims_as_soon_as_a_job_frees_room(
    service_factory: Any, redis_url: str
) -> None:
    """50 no-op jobs through one instance with a 30 s lease and room for 2 at a time. When an
    instance took new jobs only on its lease-refresh tick (every 7.5 s here), 2 per tick, this
    took ~190 s; claiming on completion finishes it in well under a tick or two."""
    import httpx  # only this test speaks HTTP

    service = await service_factory(
        server={"broker": redis_url, "job_lease_s": 30.0},
        pool={"min_workers": 1, "max_workers": 1},
    )
    jobs = [{"task": "echo", "args": {"n": n}} for n in range(50)]
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        items = (await http.post("/v1/jobs:batch", json={"jobs": jobs})).json()["jobs"]
        assert [item["status"] for item in items] == [202] * 50
        with trio.fail_after(20):  # the tick-bound design fits at most ~6 jobs in this
            for item in items:
                job_id = item["job"]["id"]
                done = (await http.get(f"/v1/jobs/{job_id}?wait=20")).json()
                assert done["state"] == "succeeded"


async def test_a_job_submitted_elsewhere_wakes_a_blocked_claim(journal: RedisJournal) -> None:
    """An instance with room and nothing to claim blocks on the streams: a job added by any
    instance (no local nudge) is claimed without waiting for a poll or refresh timer."""
    async with trio.open_nursery() as nursery:
        pool = FakePool()
        queue = RedisJobQueue(
            journal.client,
            pool=pool,  # type: ignore[arg-type]
            journal=journal,
            readiness=Readiness(phase=Phase.READY),
            lease_s=120.0,  # refresh every 30 s, reclaim every 60 s: neither can help here
            capacity=4,
            consumer="a",
            poll_s=60.0,
        )
        await nursery.start(queue.run)
        await trio.sleep(0.2)  # let it block
        for n in range(3):
            await create(journal, f"e{n}", "high" if n == 1 else "normal")
            await until(lambda n=n: f"e{n}" in pool.handles)  # type: ignore[misc]
        # Finishing a job frees its place at once: capacity 4 takes 4 more after 2 finish.
        for n in range(3, 8):
            await create(journal, f"e{n}")
        await until(lambda: len(pool.handles) == 4)
        pool.handles["e0"]._finish(JobOutcome(state="succeeded", result=None, attempts=1))
        pool.handles["e1"]._finish(JobOutcome(state="succeeded", result=None, attempts=1))
        await until(lambda: len(pool.handles) == 6)
        nursery.cancel_scope.cancel()


async def test_a_running_queue_recreates_the_group_after_redis_lost_its_data(
    journal: RedisJournal,
) -> None:
    """The claim creates the consumer group only on its first call and after a failed one
    (not on every call): a group lost with Redis's data fails one claim, and the next one
    creates it again."""
    async with trio.open_nursery() as nursery:
        queue, pool = await started_queue(nursery, journal, "a")
        await create(journal, "r1")
        queue.submit(JobSpec(id="r1", task="echo"))
        await until(lambda: "r1" in pool.handles)
        await journal.client.flushall()
        await create(journal, "r2")  # its XADD makes the stream again, without the group
        queue.submit(JobSpec(id="r2", task="echo"))
        await until(lambda: "r2" in pool.handles)
        assert queue.stats()["errors"] >= 1
        nursery.cancel_scope.cancel()
