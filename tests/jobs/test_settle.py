"""The job service's drain returns only once every finished job is finished in the journal,
and ``settle`` applies events nobody applied yet (those reported as the pool closes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
import trio.testing

from perfgate.jobs.lifecycle import JobState, LogEvent, ResultEvent, StateEvent
from perfgate.store import JobRecord, Journal, new_job_id
from tests.conftest import make_config
from tests.jobs.service_helpers import make_service, service_over_pool


class HeldFinishJournal:
    """A real journal whose final transitions wait until the test releases them."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self.entered = trio.Event()
        self.release = trio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)

    async def mark_finished(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        await self.release.wait()
        return await self._journal.mark_finished(*args, **kwargs)


async def test_drain_returns_only_once_the_finished_job_is_committed(
    tmp_path: Path, journal: Journal
) -> None:
    config = make_config(tmp_path)
    held = HeldFinishJournal(journal)
    async with service_over_pool(config, held) as service, trio.open_nursery() as nursery:
        await nursery.start(service.run)
        job, _ = await service.submit({"task": "echo", "args": {"x": 1}})
        drained = trio.Event()

        async def drain() -> None:
            await service.drain(20)
            drained.set()

        nursery.start_soon(drain)
        with trio.fail_after(20):
            await held.entered.wait()  # the job ended; its final state is being written
        await trio.testing.wait_all_tasks_blocked()
        assert not drained.is_set(), "drain returned before the final state was written"
        held.release.set()
        with trio.fail_after(20):
            await drained.wait()
        record = await journal.get(job.id)
        nursery.cancel_scope.cancel()
    assert record is not None and (record.state, record.result) == ("succeeded", {"x": 1})


async def test_settle_applies_events_no_task_applied(tmp_path: Path, journal: Journal) -> None:
    """After the pool closed (the event pump already cancelled), what it reported last still
    reaches the journal."""
    service = make_service(make_config(tmp_path), None, journal)
    record, _ = await journal.create(JobRecord(id=new_job_id(), task="echo", args={"x": 2}))
    service.on_pool_event(record.id, StateEvent(JobState.RUNNING, attempt=1))
    service.on_pool_event(record.id, LogEvent(line="hello", stream="stdout"))
    service.on_pool_event(record.id, ResultEvent(result={"x": 2}))
    service.on_pool_event(record.id, StateEvent(JobState.SUCCEEDED, attempt=1))
    await service.settle()
    assert service.stats().events_pending == 0
    done = await journal.get(record.id)
    assert done is not None
    assert (done.state, done.attempts, done.result) == ("succeeded", 1, {"x": 2})
    assert [line["line"] for line in await journal.logs(record.id)] == ["hello"]
