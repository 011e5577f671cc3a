"""Long-polls (perfgate/jobs/waiting.py): ``?wait=S`` answers as soon as the job finishes,
never after the full wait."""

from __future__ import annotations

from typing import Any

import attrs
import httpx
import trio
import trio.testing

from perfgate.config import load_config
from perfgate.jobs import JobService
from perfgate.jobs.waiting import LongPolls
from perfgate.readiness import Phase, Readiness
from perfgate.store import JobRecord


async def test_long_poll_wakes_for_jobs_that_finish_while_it_reads(service: Any) -> None:
    # The race: the job finishes between the long-poll's first read of the journal and the
    # moment it starts waiting. With echo jobs that finish in a few ms, 150 tries hit it.
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        slow: list[float] = []
        for i in range(150):
            job = (await http.post("/v1/jobs", json={"task": "echo", "args": {"i": i}})).json()
            started = trio.current_time()
            done = (await http.get(f"/v1/jobs/{job['id']}?wait=5")).json()
            assert done["state"] == "succeeded"
            if trio.current_time() - started > 2.5:
                slow.append(trio.current_time() - started)
        assert slow == [], f"{len(slow)} long-polls waited past the job's end"


class _RacingJournal:
    """``get`` returns the job as it was when called, and the job finishes during the read."""

    def __init__(self, record: Any, finish: Any) -> None:
        self.record = record
        self.finish = finish

    async def get(self, job_id: str) -> Any:
        before = self.record
        if not before.finished:
            self.record = attrs.evolve(before, state="succeeded", finished_at=1.0)
            await self.finish(self.record)
        await trio.lowlevel.checkpoint()
        return before


async def test_a_finish_during_the_first_read_is_not_missed(autojump_clock: Any) -> None:
    config = load_config(None, env={})
    readiness = Readiness()
    readiness.advance(Phase.READY)
    service = JobService(
        config=config,
        pool=None,
        journal=None,
        publish=None,
        readiness=readiness,  # type: ignore[arg-type]
    )
    record = JobRecord(id="j1", task="echo", args={}, state="running")
    service.journal = _RacingJournal(record, service._after_final)  # type: ignore[assignment]
    started = trio.current_time()
    done = await service.wait("j1", 30)
    assert done.state == "succeeded"
    assert trio.current_time() - started < 1, "the long-poll slept through the job's end"


# -- LongPolls and Waiter, without a service ---------------------------------------------------


def _record(job_id: str, state: str) -> JobRecord:
    return JobRecord(id=job_id, task="echo", args={}, state=state)


async def test_a_final_record_wakes_every_waiter_of_its_job_only(autojump_clock: Any) -> None:
    polls = LongPolls()
    woken: list[JobRecord | None] = []

    async def wait(job_id: str) -> None:
        with polls.waiting(job_id) as waiter:
            with trio.move_on_after(60):
                await waiter.until_finished(None, _never)
            woken.append(waiter.record)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait, "a")
        nursery.start_soon(wait, "a")
        nursery.start_soon(wait, "b")
        await trio.testing.wait_all_tasks_blocked()
        assert len(polls) == 3
        done = _record("a", "succeeded")
        polls.finished(done)
        await trio.testing.wait_all_tasks_blocked()
        assert woken == [done, done] and len(polls) == 1
    assert woken == [done, done, None]  # "b" timed out, with no record
    assert len(polls) == 0


async def test_wake_all_lets_every_waiter_answer_without_a_record(autojump_clock: Any) -> None:
    polls = LongPolls()
    with polls.waiting("a") as waiter:
        polls.wake_all()
        with trio.fail_after(1):
            await waiter.until_finished(None, _never)
        assert waiter.record is None


async def test_a_job_finishing_elsewhere_is_found_by_polling(autojump_clock: Any) -> None:
    polls = LongPolls()
    reads: list[float] = []

    async def finished() -> bool:
        reads.append(trio.current_time())
        return len(reads) == 3

    start = trio.current_time()
    with polls.waiting("a") as waiter:
        await waiter.until_finished(0.5, finished)
    assert [round(t - start, 6) for t in reads] == [0.5, 1.0, 1.5]


async def _never() -> bool:
    return False
