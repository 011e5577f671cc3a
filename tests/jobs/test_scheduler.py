"""Periodic jobs: the timetable is pure (time as an argument), the loop runs on the autojump
clock, each due time is submitted once (its idempotency key), missed runs are skipped or the
last one caught up, and a schedule that cannot run is refused at start."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from perfgate.config import ScheduleConfig, load_config
from perfgate.errors import ConfigError, Unavailable
from perfgate.jobs.scheduler import (
    Scheduler,
    Timetable,
    check_schedules,
    idempotency_key,
    job_body,
    last_due,
    next_due,
)
from perfgate.store import JobRecord

T0 = dt.datetime(2027, 1, 15, 8, 2, 30, tzinfo=dt.UTC).timestamp()
MINUTE = 60.0


def every(seconds: float, **kw: Any) -> ScheduleConfig:
    return ScheduleConfig(name="tick", task="echo", every_s=seconds, **kw)


def cron(expr: str, **kw: Any) -> ScheduleConfig:
    return ScheduleConfig(name="cron", task="echo", cron=expr, **kw)


def test_due_times_are_the_same_on_every_instance() -> None:
    # every_s: multiples of every_s since the epoch; cron: UTC.
    assert next_due(every(300), T0) == T0 + 150 and last_due(every(300), T0) == T0 - 150
    assert next_due(every(300), T0 + 150) == T0 + 450  # strictly after
    assert last_due(every(300), T0 + 150) == T0 + 150  # at or before
    five = cron("*/5 * * * *")
    assert next_due(five, T0) == T0 + 150 and last_due(five, T0) == T0 - 150
    assert next_due(five, T0 + 150) == T0 + 450 and last_due(five, T0 + 150) == T0 + 150
    hourly = cron("0 9 * * *")
    assert next_due(hourly, T0) == T0 + 57 * MINUTE + 30


def test_the_timetable_skips_missed_runs_by_default_and_catches_up_the_last() -> None:
    skip = Timetable.start({"tick": every(300)}, T0)
    assert skip.soonest() == ("tick", T0 + 150, T0 + 150)
    last = Timetable.start({"tick": every(300, catch_up="last")}, T0)
    assert last.soonest() == ("tick", T0 - 150, T0 - 150)
    # Stalled for three periods: the runs in between are skipped, not fired in a burst.
    skip.fired("tick", T0 + 1000)
    assert skip.soonest() == ("tick", T0 + 1050, T0 + 1050)


def test_a_refused_run_is_retried_until_the_next_due_time() -> None:
    table = Timetable.start({"tick": every(10)}, T0)
    due = table.due["tick"]
    assert table.failed("tick", due) is True
    assert table.soonest() == ("tick", due, due + 1.0)  # the same due time, a second later
    assert table.failed("tick", due + 9.5) is False
    assert table.soonest() == ("tick", due + 10, due + 10)


class FakeJobs:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.keys: dict[str, JobRecord] = {}
        self.refuse = 0

    async def submit(self, body: Any, *, tenant: str = "default") -> tuple[JobRecord, bool]:
        if self.refuse:
            self.refuse -= 1
            raise Unavailable("draining")
        self.bodies.append({**body, "tenant": tenant})
        key = body["idempotency_key"]
        if key in self.keys:
            return self.keys[key], False
        self.keys[key] = JobRecord(id=f"j{len(self.keys)}", task=body["task"], args=body["args"])
        return self.keys[key], True


def mock_wall_clock() -> float:
    return T0 + trio.current_time()


async def test_the_loop_fires_each_due_time_once(autojump_clock: trio.testing.MockClock) -> None:
    jobs = FakeJobs()
    schedules = {
        "tick": every(60, args={"n": 1}, priority="high"),
        "cron": cron("*/5 * * * *", tenant="acme"),
    }
    scheduler = Scheduler(schedules, jobs, clock=mock_wall_clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        await trio.sleep(29)
        assert jobs.bodies == []
        await trio.sleep(2)  # 08:03:00
        assert jobs.bodies == [
            {
                "task": "echo",
                "args": {"n": 1},
                "priority": "high",
                "idempotency_key": "schedule:tick:2027-01-15T08:03:00.000Z",
                "tenant": "default",
            }
        ]
        await trio.sleep(10 * MINUTE)
        keys = [b["idempotency_key"] for b in jobs.bodies]
        assert len(keys) == len(set(keys)) == 13  # 11 ticks, 2 cron runs (08:05, 08:10)
        assert [
            b["tenant"] for b in jobs.bodies if b["task"] == "echo" and "priority" not in b
        ] == [
            "acme",
            "acme",
        ]
        assert scheduler.stats()["fired"] == 13
        nursery.cancel_scope.cancel()


async def test_two_instances_fire_each_due_time_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The same timetable on two instances: both submit, the idempotency key makes one job."""
    jobs = FakeJobs()
    schedules = {"tick": every(60)}
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            await nursery.start(Scheduler(schedules, jobs, clock=mock_wall_clock).run)
        await trio.sleep(5 * MINUTE)
        nursery.cancel_scope.cancel()
    assert len(jobs.bodies) == 10 and len(jobs.keys) == 5


async def test_a_refused_run_is_retried_with_the_same_key(
    autojump_clock: trio.testing.MockClock,
) -> None:
    jobs = FakeJobs()
    jobs.refuse = 3
    scheduler = Scheduler({"tick": every(60)}, jobs, clock=mock_wall_clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        await trio.sleep(35)  # due at +30, refused 3 times, a second apart
        assert [b["idempotency_key"] for b in jobs.bodies] == [idempotency_key(every(60), T0 + 30)]
        nursery.cancel_scope.cancel()


def test_job_body_and_key() -> None:
    body = job_body(every(60, timeout_s=5.0, max_retries=2), T0 - 30)
    assert body == {
        "task": "echo",
        "args": {},
        "timeout_s": 5.0,
        "max_retries": 2,
        "idempotency_key": "schedule:tick:2027-01-15T08:02:00.000Z",
    }


# -- configuration -------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "perfgate.toml"
    path.write_text(text)
    return path


def test_schedules_load_from_toml(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            '[schedules.nightly]\ntask = "sha256"\nargs = { data = "x" }\ncron = "0 3 * * *"\n'
            '[schedules.often]\ntask = "echo"\nevery_s = 30\ncatch_up = "last"\n',
        ),
        env={},
    )
    nightly, often = config.schedules["nightly"], config.schedules["often"]
    assert (nightly.task, nightly.args, nightly.cron) == ("sha256", {"data": "x"}, "0 3 * * *")
    assert (often.every_s, often.catch_up) == (30.0, "last")
    check_schedules(config)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('task = "echo"\ncron = "*/5 * * *"', "[schedules.s] cron '*/5 * * *'"),
        ('task = "echo"\ncron = "61 * * * *"', "[schedules.s] cron '61 * * * *'"),
        ('task = "echo"', "exactly one of 'cron' or 'every_s'"),
        ('task = "echo"\nevery_s = 5\ncron = "* * * * *"', "exactly one of 'cron' or 'every_s'"),
        ('task = "echo"\nevery_s = 0', "every_s: must be >= 1"),
        ('task = "echo"\nevery_s = 5\ncatch_up = "all"', "catch_up: one of skip, last"),
        ('task = "echo"\nevery_s = 5\nperiod = 3', "[schedules.s] period: unknown key"),
        ('task = "echo"\nevery_s = "5"', "every_s: expected a number"),
    ],
)
def test_a_bad_schedule_is_a_config_error_naming_it(
    tmp_path: Path, table: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, f"[schedules.s]\n{table}\n"), env={})
    assert message in refused.value.message


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('task = "nope"\nevery_s = 5', "[schedules.s] task: unknown task 'nope'"),
        ('task = "sleep"\nevery_s = 5\nargs = { seconds = "x" }', "[schedules.s] args:"),
        ('task = "sleep"\nevery_s = 5\nargs = { minutes = 1 }', "[schedules.s] args:"),
    ],
)
def test_a_schedule_that_cannot_run_is_refused_at_start(
    tmp_path: Path, table: str, message: str
) -> None:
    config = load_config(write(tmp_path, f"[schedules.s]\n{table}\n"), env={})
    with pytest.raises(ConfigError) as refused:
        check_schedules(config)
    assert message in refused.value.message and "\n" not in refused.value.message


def test_check_schedules_passes_with_none() -> None:
    check_schedules(attrs.evolve(load_config(None, env={}), schedules={}))


async def test_a_running_service_fires_its_schedules(tmp_path: Path) -> None:
    import httpx

    from perfgate.supervisor import Supervisor
    from tests.conftest import make_config

    tick = ScheduleConfig(name="tick", task="echo", every_s=1, args={"n": 1})
    config = attrs.evolve(make_config(tmp_path), schedules={"tick": tick})
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(Supervisor(config, handle_signals=False).run)
        async with httpx.AsyncClient(base_url=bound.http, timeout=10) as http:
            with trio.fail_after(15):
                while True:
                    jobs = (await http.get("/v1/jobs?state=succeeded")).json()["jobs"]
                    if len(jobs) >= 2:
                        break
                    await trio.sleep(0.2)
        nursery.cancel_scope.cancel()
    keys = [job["idempotency_key"] for job in jobs]
    assert all(key.startswith("schedule:tick:") for key in keys) and len(set(keys)) == len(keys)
    assert all(job["args"] == {"n": 1} for job in jobs)
