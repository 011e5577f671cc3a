"""A long-poll in Redis mode is woken by its job's final state published by another instance
(perfgate/jobs/waiting.py), not by re-reading the journal on a timer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from perfgate.broker import Message
from perfgate.config import load_config
from perfgate.jobs import JobService
from perfgate.jobs.lifecycle import JobState, StateEvent
from perfgate.jobs.waiting import FinalWatch, Waiter
from perfgate.readiness import Phase, Readiness
from perfgate.redis.client import open_redis
from perfgate.redis.hub import RedisHub
from perfgate.redis.journal import RedisJournal
from perfgate.store import JobRecord


class SharedQueue:
    """A shared queue whose re-read period is far beyond the test's deadline: only the
    channel can wake the long-poll in time."""

    wait_poll_s = 600.0
    moves_due_jobs = True

    def owns_events(self, job_id: str) -> bool:
        return True


@asynccontextmanager
async def instance(redis_url: str) -> AsyncIterator[tuple[RedisJournal, RedisHub]]:
    async with open_redis(redis_url) as client, trio.open_nursery() as nursery:
        hub = RedisHub(client)
        await nursery.start(hub.run)
        yield RedisJournal(client, max_log_lines=10, result_ttl_s=60), hub
        nursery.cancel_scope.cancel()


def service(journal: RedisJournal, hub: RedisHub) -> JobService:
    readiness = Readiness()
    readiness.advance(Phase.READY)
    return JobService(
        config=load_config(None, env={}),
        pool=None,  # type: ignore[arg-type]
        journal=journal,
        publish=hub.publish,
        readiness=readiness,
        queue=SharedQueue(),  # type: ignore[arg-type]
        hub=hub,
    )


async def test_a_long_poll_wakes_on_the_final_state_another_instance_published(
    redis_url: str,
) -> None:
    async with instance(redis_url) as (journal_a, hub_a), instance(redis_url) as (b, hub_b):
        waiting_on_b = service(b, hub_b)
        await journal_a.create(JobRecord(id="w1", task="echo", args={}, created_at=1.0))
        answer: dict[str, Any] = {}

        async def wait() -> None:
            answer["job"] = await waiting_on_b.wait("w1", 300)

        with trio.fail_after(15):  # far below the 600 s re-read: the channel woke it
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.sleep(0.3)  # subscribed, read, waiting
                assert "job" not in answer
                await journal_a.mark_running("w1")
                await hub_a.publish("jobs:w1", StateEvent(JobState.RUNNING, 1).to_json())
                await trio.sleep(0.2)
                assert "job" not in answer  # not a final state
                await journal_a.mark_finished("w1", "succeeded", result={"ok": True})
                await hub_a.publish("jobs:w1", StateEvent(JobState.SUCCEEDED, 1).to_json())
        job: JobRecord = answer["job"]
        assert (job.state, job.result) == ("succeeded", {"ok": True})
        assert hub_b.stats()["subscribed_channels"] == 0  # unsubscribed when answered


def test_only_a_final_state_event_wakes_the_watch() -> None:
    waiter = Waiter()
    watch = FinalWatch(waiter)
    for data in (
        {"event": "state", "state": "running"},
        {"event": "result", "result": "succeeded"},
        {"event": "log", "state": "failed"},
    ):
        watch.deliver(Message("jobs:x", 1, data, "normal", 0.0))
        assert not waiter.event.is_set()
    watch.deliver(Message("jobs:x", 2, {"event": "state", "state": "dead"}, "normal", 0.0))
    assert waiter.event.is_set()
