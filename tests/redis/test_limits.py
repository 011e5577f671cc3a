"""A task's ``max_concurrency`` across instances on one Redis: a claim over the cap moves the
job off its stream into the task's held set (other tasks' jobs behind it are still claimed),
finishing frees the slot and releases one held job, and a dead instance's slot lapses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from perfgate.redis.client import open_redis
from perfgate.redis.journal import RedisJournal
from perfgate.redis.keys import GROUP
from perfgate.redis.scripts.queue import CLAIM_LUA, REFRESH_LUA, STALE_CONSUMER_MS
from perfgate.store import JobRecord

LEASE_MS = 600
CAPS = json.dumps({"capped": 1})


@pytest.fixture
async def journal(redis_url: str) -> AsyncIterator[RedisJournal]:
    async with open_redis(redis_url) as client:
        yield RedisJournal(client, max_log_lines=10, result_ttl_s=60)


async def create(journal: RedisJournal, job_id: str, task: str, priority: str = "normal") -> None:
    await journal.create(
        JobRecord(id=job_id, task=task, args={}, priority=priority, created_at=1.0)
    )


async def claim(journal: RedisJournal, consumer: str, *, reclaim_ms: int = 0) -> list[str]:
    script = journal.client.register_script(CLAIM_LUA)
    reply: Any = await script(
        args=[
            journal.prefix, GROUP, consumer, 10, LEASE_MS, reclaim_ms,
            STALE_CONSUMER_MS, CAPS,
        ]
    )  # fmt: skip
    return [str(job_id) for job_id, _ in reply[0]]


async def held(journal: RedisJournal) -> list[str]:
    return [str(m) for m in await journal.client.zrange(f"{journal.prefix}{{held}}:capped", 0, -1)]


async def test_over_the_cap_a_job_is_held_and_the_others_run(journal: RedisJournal) -> None:
    await create(journal, "c1", "capped")
    await create(journal, "c2", "capped")
    await create(journal, "e1", "echo")
    await create(journal, "c3", "capped", priority="high")
    await create(journal, "e2", "echo")
    a = await claim(journal, "a")
    b = await claim(journal, "b")
    assert a == ["c3", "e1", "e2"] and b == []  # the high one took the slot; echo passed
    assert await held(journal) == ["c1", "c2"]
    assert await journal.client.xlen(journal.keys.stream("normal")) == 2  # e1, e2 (pending)
    # Finishing frees the slot and puts the best held job back on its stream, for anyone.
    await journal.mark_running("c3")
    await journal.mark_finished("c3", "succeeded", result=1)
    assert await claim(journal, "b") == ["c1"]
    assert await held(journal) == ["c2"]
    assert await claim(journal, "a") == []
    # A cancelled held job leaves the held set; the next finish releases nothing for it.
    await journal.cancel("c2")
    assert await held(journal) == []
    await journal.mark_finished("c1", "failed", error={"message": "x"})
    assert await claim(journal, "a") == []


async def test_a_dead_instances_slot_lapses_with_its_lease(journal: RedisJournal) -> None:
    await create(journal, "c1", "capped")
    await create(journal, "c2", "capped")
    assert await claim(journal, "a") == ["c1"]
    await journal.mark_running("c1")
    assert await claim(journal, "b") == [] and await held(journal) == ["c2"]
    refresh = journal.client.register_script(REFRESH_LUA)
    for _ in range(3):  # "a" is alive: its refresh keeps the slot past the lease
        await trio.sleep(LEASE_MS / 2000)
        await refresh(args=[journal.prefix, GROUP, "a", LEASE_MS, "c1"])
        assert await claim(journal, "b") == []
    await trio.sleep(1.5 * LEASE_MS / 1000)  # "a" died: its slot lapses, c2 may run
    assert await claim(journal, "b") == ["c2"]
    # And c1 itself is reclaimed once its entry idled past the lease: it takes its slot
    # back only when one is free, so two never run at once.
    assert await claim(journal, "b", reclaim_ms=LEASE_MS) == []
    assert await held(journal) == ["c1"]
    c1 = await journal.get("c1")
    assert c1 is not None and c1.state == "queued"  # requeued (it was running), not lost
    await journal.mark_finished("c2", "succeeded", result=1)
    assert await claim(journal, "b") == ["c1"]


async def test_capped_jobs_never_overlap_through_the_service(
    service_factory: Any, redis_url: str
) -> None:
    import httpx

    from perfgate.config import TaskConfig

    capped = TaskConfig(name="capped", target="perfgate.tasks:sleep", max_concurrency=1)
    service = await service_factory(
        server={"broker": redis_url}, tasks={"capped": capped}, pool={"max_workers": 3}
    )
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        body = {"task": "capped", "args": {"seconds": 0.3}}
        ids = [(await http.post("/v1/jobs", json=body)).json()["id"] for _ in range(3)]
        echo = (await http.post("/v1/jobs?wait=20", json={"task": "echo"})).json()
        assert echo["state"] == "succeeded"
        jobs = [(await http.get(f"/v1/jobs/{i}?wait=20")).json() for i in ids]
        stats = (await http.get("/v1/stats")).json()
    assert [job["state"] for job in jobs] == ["succeeded"] * 3
    spans = sorted((job["started_at"], job["finished_at"]) for job in jobs)
    assert all(spans[n][1] <= spans[n + 1][0] for n in range(2)), spans  # one at a time
    assert echo["finished_at"] < spans[-1][0]  # the echo did not wait behind them
    assert isinstance(stats["sources"]["queue"]["held"], dict)  # sampled with the backlog
