"""Periodic jobs: ``[schedules.NAME]`` submitted on their timetable, each due time once.

The timetable is pure (:func:`next_due`, :func:`last_due`, :class:`Timetable`: time is an
argument); :class:`Scheduler` is the thin trio loop around it, a ``run(*, task_status)``
component the supervisor starts in its tasks nursery after the job service.

**Once per due time.** Each firing is an ordinary submit whose idempotency key names the
schedule and the due time (``schedule:NAME:2030-01-01T09:00:00.000Z``), in the schedule's
tenant. Every instance on one Redis fires every due time, and the journal's create (one Lua
script: the key is set if absent) lets exactly one of them make the job; the others get that
job back. With the SQLite journal one server runs per data directory, and the same key keeps a
due time fired before a restart from firing again after it. Due times are the same on every
instance: cron times in UTC, and ``every_s`` times are multiples of ``every_s`` since the Unix
epoch (so ``every_s = 3600`` fires on the hour).

**Missed runs.** Due times that passed while no instance ran (or while this one was stalled)
are skipped by default (``catch_up = "skip"``): the next run is the next due time. With
``catch_up = "last"``, the most recent missed due time fires once at start, unless it fired
already (its key is still held: a key is free again once its job was swept, after
``[store] result_ttl_s``). A submit refused for a passing reason (draining, Redis away, queue
full) is tried again every :data:`RETRY_S` until that schedule's next due time, then skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

import attrs
import trio
from cronsim import CronSim

from perfgate.config import Config, ScheduleConfig
from perfgate.errors import ConfigError, PerfgateError, RateLimited, Unavailable, ValidationError
from perfgate.logs import log_event
from perfgate.pool.validation import check_args
from perfgate.store.record import JobRecord, iso_utc

log = logging.getLogger("perfgate.jobs")

RETRY_S: Final = 1.0


def next_due(schedule: ScheduleConfig, after: float) -> float:
    """The first due time strictly after ``after`` (epoch seconds)."""
    if schedule.every_s is not None:
        return (math.floor(after / schedule.every_s) + 1) * schedule.every_s
    assert schedule.cron is not None
    start = dt.datetime.fromtimestamp(after, tz=dt.UTC)
    return next(CronSim(schedule.cron, start)).timestamp()


def last_due(schedule: ScheduleConfig, at: float) -> float:
    """The latest due time at or before ``at``."""
    if schedule.every_s is not None:
        return math.floor(at / schedule.every_s) * schedule.every_s
    assert schedule.cron is not None
    start = dt.datetime.fromtimestamp(at, tz=dt.UTC) + dt.timedelta(microseconds=1)
    return next(CronSim(schedule.cron, start, reverse=True)).timestamp()


def idempotency_key(schedule: ScheduleConfig, due: float) -> str:
    return f"schedule:{schedule.name}:{iso_utc(due)}"


def job_body(schedule: ScheduleConfig, due: float) -> dict[str, Any]:
    """The submit body of the run due at ``due``."""
    body: dict[str, Any] = {
        "task": schedule.task,
        "args": dict(schedule.args),
        "idempotency_key": idempotency_key(schedule, due),
    }
    for name in ("priority", "timeout_s", "max_retries"):
        value = getattr(schedule, name)
        if value is not None:
            body[name] = value
    return body


@attrs.define
class Timetable:
    """Per schedule, the due time to fire next (``due``) and when to try it (``wake``: the due
    time itself, or a retry after a submit that was refused for a passing reason)."""

    schedules: Mapping[str, ScheduleConfig]
    due: dict[str, float] = attrs.field(factory=dict)
    wake: dict[str, float] = attrs.field(factory=dict)

    @classmethod
    def start(cls, schedules: Mapping[str, ScheduleConfig], now: float) -> Timetable:
        table = cls(schedules)
        for name, schedule in schedules.items():
            last = last_due(schedule, now)
            # A due time exactly now is not missed: it fires now, whatever catch_up says.
            catch = last == now or schedule.catch_up == "last"
            table.due[name] = table.wake[name] = last if catch else next_due(schedule, now)
        return table

    def soonest(self) -> tuple[str, float, float] | None:
        """``(name, due, wake)`` of the schedule to try first, or ``None``."""
        if not self.wake:
            return None
        name = min(self.wake, key=lambda n: (self.wake[n], n))
        return name, self.due[name], self.wake[name]

    def fired(self, name: str, now: float) -> None:
        """``name``'s due time was submitted (or given up): plan the next one after both it
        and ``now`` (due times missed meanwhile are skipped)."""
        self.due[name] = self.wake[name] = next_due(self.schedules[name], max(self.due[name], now))

    def failed(self, name: str, now: float) -> bool:
        """``name``'s due time could not be submitted: try it again in :data:`RETRY_S`, until
        its next due time comes. False (and the next due time planned) once it has."""
        if now + RETRY_S >= next_due(self.schedules[name], self.due[name]):
            self.fired(name, now)
            return False
        self.wake[name] = now + RETRY_S
        return True


def check_schedules(config: Config) -> None:
    """Every schedule can run: its task is configured and takes its arguments. Raises a
    one-line :class:`~perfgate.errors.ConfigError` naming the schedule otherwise (at start,
    not at the first due time)."""
    for name, schedule in config.schedules.items():
        task = config.tasks.get(schedule.task)
        if task is None:
            raise ConfigError(
                f"[schedules.{name}] task: unknown task {schedule.task!r} "
                f"(configured: {', '.join(sorted(config.tasks))})"
            )
        try:
            check_args(task, dict(schedule.args))
        except ValidationError as exc:
            raise ConfigError(f"[schedules.{name}] args: {exc.message}") from None


class Submitter(Protocol):
    async def submit(self, body: Any, *, tenant: str = ...) -> tuple[JobRecord, bool]: ...


class Scheduler:
    """Submits each schedule's jobs when due (see the module docstring). ``clock`` is the wall
    clock due times are read on; ``sleep`` waits (trio's, so tests run on a mock clock)."""

    def __init__(
        self,
        schedules: Mapping[str, ScheduleConfig],
        jobs: Submitter,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = trio.sleep,
    ) -> None:
        self.schedules = dict(schedules)
        self.jobs = jobs
        self._clock = clock
        self._sleep = sleep
        self.fired = 0
        self.skipped = 0

    def stats(self) -> dict[str, Any]:
        return {"schedules": len(self.schedules), "fired": self.fired, "skipped": self.skipped}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fire schedules until cancelled."""
        table = Timetable.start(self.schedules, self._clock())
        task_status.started()
        while True:
            soonest = table.soonest()
            if soonest is None:
                await trio.sleep_forever()
                return
            name, due, wake = soonest
            await self._sleep(max(0.0, wake - self._clock()))
            schedule = self.schedules[name]
            try:
                job, created = await self.jobs.submit(
                    job_body(schedule, due), tenant=schedule.tenant
                )
            except (Unavailable, RateLimited) as exc:
                if not table.failed(name, self._clock()):
                    self.skipped += 1
                    log_event(
                        log,
                        logging.WARNING,
                        "schedule run skipped",
                        schedule=name,
                        error=exc.message,
                    )
                continue
            except PerfgateError as exc:  # the configuration changed under us: skip this run
                self.skipped += 1
                log_event(
                    log, logging.ERROR, "schedule run refused", schedule=name, error=exc.message
                )
            else:
                if created:
                    self.fired += 1
                    log_event(log, logging.INFO, "schedule fired", schedule=name, job=job.id)
            table.fired(name, self._clock())
