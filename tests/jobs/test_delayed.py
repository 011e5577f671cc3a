"""Delayed jobs: ``delay_s`` / ``run_at`` make a ``scheduled`` job that is queued when due,
never before, across a restart, and not at all once cancelled. The due-time logic is pure;
the service runs on the autojump clock against the real SQLite journal."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from perfgate.config import load_config
from perfgate.errors import QueueFull, ValidationError
from perfgate.jobs import JobService
from perfgate.jobs.delayed import RUN_AT_GRACE_S, DueTimers, due_time, parse_rfc3339
from perfgate.pool import JobSpec
from perfgate.readiness import Phase, Readiness
from perfgate.store import Journal

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


# -- pure ---------------------------------------------------------------------------------------


def test_parse_rfc3339_needs_a_date_a_time_and_an_offset() -> None:
    assert parse_rfc3339("2027-01-15T08:00:00Z") == T0
    assert parse_rfc3339("2027-01-15T09:00:00+01:00") == T0
    assert parse_rfc3339("2027-01-15T08:00:00.250Z") == T0 + 0.25
    for bad in ("2027-01-15T08:00:00", "2027-01-15", "tomorrow", "2027-13-01T00:00:00Z"):
        with pytest.raises(ValidationError) as refused:
            parse_rfc3339(bad)
        assert refused.value.extra["errors"][0]["field"] == "run_at"


@pytest.mark.parametrize(
    ("request_", "due"),
    [
        ({}, None),
        ({"delay_s": 0}, None),
        ({"delay_s": 30}, T0 + 30),
        ({"delay_s": 0.5}, T0 + 0.5),
        ({"run_at": "2027-01-15T08:01:00Z"}, T0 + 60),
        # A little in the past (the client's clock behind ours): at once.
        ({"run_at": "2027-01-15T07:59:55Z"}, None),
    ],
)
def test_due_time(request_: dict[str, Any], due: float | None) -> None:
    assert due_time(request_, T0) == due


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        ({"delay_s": 5, "run_at": "2027-01-15T08:01:00Z"}, ["delay_s", "run_at"]),
        ({"run_at": "2027-01-15T07:59:49Z"}, ["run_at"]),  # past the grace
        ({"run_at": "2029-01-15T08:00:00Z"}, ["run_at"]),  # more than a year ahead
        ({"run_at": "soon"}, ["run_at"]),
    ],
)
def test_bad_due_times_are_422_naming_the_field(
    request_: dict[str, Any], fields: list[str]
) -> None:
    with pytest.raises(ValidationError) as refused:
        due_time(request_, T0)
    assert [e["field"] for e in refused.value.extra["errors"]] == fields
    assert RUN_AT_GRACE_S == 10.0  # as documented in the README


def test_due_timers_pop_soonest_first_and_forget_disarmed() -> None:
    timers = DueTimers()
    timers.arm("b", 20.0)
    timers.arm("a", 10.0)
    timers.arm("c", 30.0)
    timers.disarm("b")
    timers.arm("c", 5.0)  # re-armed: the new time counts, once
    assert timers.next_due() == 5.0 and len(timers) == 2
    assert timers.pop_due(4.9) == []
    assert timers.pop_due(10.0) == ["c", "a"]
    assert timers.pop_due(100.0) == [] and timers.next_due() is None and len(timers) == 0


# -- the service, on the autojump clock -----------------------------------------------------


class FakePool:
    """What the job service asks of the pool; records what it was given."""

    def __init__(self, max_queue: int = 100) -> None:
        self.config = load_config(None, env={}, overrides={"pool": {"max_queue": max_queue}}).pool
        self.submitted: list[JobSpec] = []
        self.cancelled: list[str] = []

    def validate(self, spec: JobSpec) -> None:
        pass

    def submit(self, spec: JobSpec) -> None:
        self.submitted.append(spec)

    def cancel(self, job_id: str) -> bool:
        self.cancelled.append(job_id)
        return False

    def is_live(self, job_id: str) -> bool:
        return False

    def queue_room(self) -> int:
        return max(0, self.config.max_queue - len(self.submitted))

    async def drain(self, timeout_s: float) -> None:
        pass


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """Autojump, but only after 0.1 s (real) of idleness: the journal writes in a worker
    thread, and the clock must not jump to the next due time while a write is in flight."""
    return trio.testing.MockClock(autojump_threshold=0.1)


def clock() -> float:
    return T0 + trio.current_time()


@contextlib.asynccontextmanager
async def running_service(data_dir: Path, pool: FakePool) -> AsyncIterator[JobService]:
    async def publish(channel: str, data: Any) -> None:
        pass

    readiness = Readiness()
    readiness.advance(Phase.READY)
    async with Journal.open(
        data_dir, max_log_lines=10, result_ttl_s=3600.0, clock=clock, sweep=False
    ) as journal:
        service = JobService(
            config=load_config(None, env={}),
            pool=pool,  # type: ignore[arg-type]
            journal=journal,
            publish=publish,
            readiness=readiness,
            clock=clock,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            yield service
            nursery.cancel_scope.cancel()


async def test_a_delayed_job_waits_scheduled_then_is_queued_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    pool = FakePool()
    async with running_service(tmp_path, pool) as service:
        job, created = await service.submit({"task": "echo", "delay_s": 60})
        assert created and job.state == "scheduled" and job.run_at == clock() + 60
        at = await service.submit({"task": "echo", "run_at": "2027-01-15T08:00:30Z"})
        assert at[0].state == "scheduled" and at[0].run_at == T0 + 30
        now = await service.submit({"task": "echo"})
        assert [s.id for s in pool.submitted] == [now[0].id]
        assert service.stats().scheduled == 2
        await trio.sleep(29)
        assert len(pool.submitted) == 1
        await trio.sleep(2)
        assert [s.id for s in pool.submitted] == [now[0].id, at[0].id]
        assert (await service.get(at[0].id)).state == "queued"
        await trio.sleep(28)
        assert (await service.get(job.id)).state == "scheduled"
        await trio.sleep(2)
        assert [s.id for s in pool.submitted][-1] == job.id
        assert (await service.get(job.id)).state == "queued"
        await trio.sleep(3600)
        assert len(pool.submitted) == 3 and service.stats().scheduled == 0


async def test_a_cancelled_delayed_job_is_never_queued(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    pool = FakePool()
    async with running_service(tmp_path, pool) as service:
        job, _ = await service.submit({"task": "echo", "delay_s": 10})
        cancelled = await service.cancel(job.id)
        assert cancelled.state == "cancelled"
        await trio.sleep(60)
        assert pool.submitted == [] and (await service.get(job.id)).state == "cancelled"


async def test_a_restart_rearms_delayed_jobs_without_running_them_early(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running_service(tmp_path, FakePool()) as service:
        later, _ = await service.submit({"task": "echo", "delay_s": 100})
        soon, _ = await service.submit({"task": "echo", "delay_s": 5})
    await trio.sleep(20)  # stopped meanwhile: "soon" fell due while nothing ran
    pool = FakePool()
    async with running_service(tmp_path, pool) as service:
        await trio.sleep(0.1)
        assert [s.id for s in pool.submitted] == [soon.id]  # late, never lost
        assert (await service.get(later.id)).state == "scheduled"
        await trio.sleep(100 - 20 - 0.1 - 1)
        assert [s.id for s in pool.submitted] == [soon.id]
        await trio.sleep(2)
        assert [s.id for s in pool.submitted] == [soon.id, later.id]


async def test_delayed_jobs_waiting_here_are_bounded(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running_service(tmp_path, FakePool(max_queue=2)) as service:
        await service.submit({"task": "echo", "delay_s": 10})
        await service.submit({"task": "echo", "delay_s": 10})
        with pytest.raises(QueueFull):
            await service.submit({"task": "echo", "delay_s": 10})
        answers = await service.submit_many([{"task": "echo", "delay_s": 10}])
        assert isinstance(answers[0], QueueFull)


async def test_a_job_due_while_the_pool_refuses_stays_owed_and_runs_later(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    from perfgate.errors import Unavailable

    class Draining(FakePool):
        refusing = True

        def submit(self, spec: JobSpec) -> None:
            if self.refusing:
                raise Unavailable("draining")
            super().submit(spec)

    pool = Draining()
    async with running_service(tmp_path, pool) as service:
        job, _ = await service.submit({"task": "echo", "delay_s": 5})
        await trio.sleep(10)  # due while the pool refuses: the service survives it
        assert pool.submitted == [] and (await service.get(job.id)).state == "queued"
        pool.refusing = False
        await trio.sleep(2)
        assert [s.id for s in pool.submitted] == [job.id]
