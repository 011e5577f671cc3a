"""The pool's events (perfgate/jobs/events.py): the channel drops only progress, and gives back
what was not applied in order. Pool events are applied in groups (each job's in order, jobs concurrently, so a group's
transitions share one commit); a published state is the state a read returns; a long-poll
woken by the final state answers without reading the journal again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from perfgate.jobs.events import MAX_PENDING_PROGRESS, PoolEvents
from perfgate.jobs.lifecycle import (
    JobError,
    JobState,
    LogEvent,
    ProgressEvent,
    ResultEvent,
    StateEvent,
)
from perfgate.store import JobRecord, Journal, _sql, new_job_id
from tests.conftest import make_config
from tests.jobs.service_helpers import make_service, service_over_pool


class CountingJournal:
    """A real journal that counts reads."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)

    async def get(self, job_id: str) -> JobRecord | None:
        self.reads += 1
        return await self._journal.get(job_id)


async def _queued(journal: Journal, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        record, _ = await journal.create(JobRecord(id=new_job_id(), task="echo", args={}))
        ids.append(record.id)
    return ids


async def test_a_group_of_transitions_shares_one_commit(tmp_path: Path, journal: Journal) -> None:
    service = make_service(make_config(tmp_path), None, journal)
    ids = await _queued(journal, 20)
    for job_id in ids:
        service.on_pool_event(job_id, StateEvent(JobState.RUNNING, 1))
    for job_id in ids:
        service.on_pool_event(job_id, ResultEvent({"ok": job_id}))
        service.on_pool_event(job_id, StateEvent(JobState.SUCCEEDED, 1))
    before = journal.stats().batches
    await service.settle()
    # 40 transitions of 20 jobs: each job's two in order, the jobs side by side.
    assert journal.stats().batches - before <= 3
    for job_id in ids:
        record = await journal.get(job_id)
        assert record is not None
        assert (record.state, record.result, record.attempts) == ("succeeded", {"ok": job_id}, 1)


async def test_every_published_state_is_the_state_a_read_returns(
    tmp_path: Path, journal: Journal
) -> None:
    """Journal first, channel second, even with groups and the journal's recent-jobs cache: a
    read made as each state event is published sees that state, in memory and on disk."""
    config = make_config(tmp_path)
    disk = _sql.connect(tmp_path / "data", readonly=True)  # bypasses the journal's memory
    seen: list[tuple[str, str]] = []

    async def publish(channel: str, data: Any) -> int:
        if data.get("event") == "state":
            job_id = channel.removeprefix("jobs:")
            read = await service.get(job_id)
            on_disk = _sql.get(disk, job_id)
            assert on_disk is not None
            assert data["state"] == read.state == on_disk.state, (data, read, on_disk)
            seen.append((job_id, data["state"]))
        return 0

    async with (
        service_over_pool(config, journal, publish) as service,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(service.run)
        jobs = [(await service.submit({"task": "echo", "args": {"i": i}}))[0] for i in range(12)]
        with trio.fail_after(30):
            done = [await service.wait(job.id, 30) for job in jobs]
        assert [job.state for job in done] == ["succeeded"] * 12
        cancelled = (await service.submit({"task": "sleep", "args": {"seconds": 30}}))[0]
        with trio.fail_after(30):
            while (await service.get(cancelled.id)).state != "running":  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert (await service.cancel(cancelled.id)).state == "cancelled"
        await service.settle()
        assert (await service.get(cancelled.id)).state == "cancelled"
        nursery.cancel_scope.cancel()
    # (the pool may also report ``queued`` as it takes a job)
    for job in jobs:
        assert [s for j, s in seen if j == job.id and s != "queued"] == ["running", "succeeded"]
    assert [s for j, s in seen if j == cancelled.id and s != "queued"] == ["running", "cancelled"]


async def test_an_interrupted_group_is_applied_again_in_order_without_repeats(
    tmp_path: Path, journal: Journal
) -> None:
    """A cancellation in the middle of a group leaves what was not applied queued, in order,
    and applies nothing twice: the next settle finishes the job with one copy of its log."""
    service = make_service(make_config(tmp_path), None, journal)
    [job_id] = await _queued(journal, 1)
    held = trio.Event()
    real_mark_finished = journal.mark_finished

    async def slow_mark_finished(*args: Any, **kwargs: Any) -> Any:
        held.set()
        await trio.sleep_forever()

    service.on_pool_event(job_id, StateEvent(JobState.RUNNING, 1))
    service.on_pool_event(job_id, LogEvent("one line", "stdout"))
    service.on_pool_event(job_id, StateEvent(JobState.FAILED, 1, JobError("Boom", "no")))
    service.on_pool_event(job_id, LogEvent("after", "stdout"))
    with trio.move_on_after(5) as scope:
        journal.mark_finished = slow_mark_finished  # type: ignore[method-assign]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(service.settle)
            await held.wait()
            nursery.cancel_scope.cancel()
    assert not scope.cancelled_caught
    journal.mark_finished = real_mark_finished  # type: ignore[method-assign]
    assert service.stats().events_pending == 2  # the final state and the line after it
    await service.settle()
    record = await journal.get(job_id)
    assert record is not None and (record.state, record.attempts) == ("failed", 1)
    assert [line["line"] for line in await journal.logs(job_id)] == ["one line", "after"]


async def test_submit_and_wait_reads_nothing_and_a_long_poll_reads_once(
    tmp_path: Path, journal: Journal
) -> None:
    config = make_config(tmp_path)
    counting = CountingJournal(journal)
    async with service_over_pool(config, counting) as service, trio.open_nursery() as nursery:
        await nursery.start(service.run)
        with trio.fail_after(30):
            job, created = await service.submit_and_wait({"task": "echo", "args": {"a": 1}}, 30)
        assert created and job.state == "succeeded" and job.result == {"a": 1}
        assert counting.reads == 0
        queued, _ = await service.submit({"task": "echo", "args": {"b": 2}})
        with trio.fail_after(30):
            finished = await service.wait(queued.id, 30)
        assert finished.state == "succeeded" and finished.result == {"b": 2}
        assert counting.reads == 1  # the first read only: the final record came with the wake-up
        nursery.cancel_scope.cancel()


def test_only_progress_is_dropped_past_the_limit_and_applying_frees_room() -> None:
    events = PoolEvents()
    for _ in range(MAX_PENDING_PROGRESS + 2):
        events.put("a", ProgressEvent(0.5))
    events.put("a", StateEvent(JobState.SUCCEEDED, 1))  # never dropped
    assert (len(events), events.progress_dropped) == (MAX_PENDING_PROGRESS + 1, 2)
    group = events.take(3)
    events.give_back(group, [True, True, True])  # three progress events applied: room for three
    for fraction in (0.6, 0.7, 0.8, 0.9):
        events.put("a", ProgressEvent(fraction))
    assert events.progress_dropped == 3


def test_unapplied_events_go_back_in_front_in_their_order() -> None:
    events = PoolEvents()
    sent = [("a", LogEvent(f"line {i}", "stdout")) for i in range(5)]
    for job_id, event in sent:
        events.put(job_id, event)
    group = events.take(4)
    assert group == sent[:4] and len(events) == 1
    events.give_back(group, [True, False, True, False])
    assert events.take(10) == [sent[1], sent[3], sent[4]]
