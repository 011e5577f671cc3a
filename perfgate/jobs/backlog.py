"""Jobs the journal holds as owed but the queue does not have yet.

Two kinds: jobs the queue had no room for (recovered at start, or retried while it was full),
fed to the pool as room frees; and, with the SQLite journal, delayed jobs, queued when due
(the lifecycle's ``due``; with Redis the shared queue moves them itself). Both run as tasks
of :meth:`Backlog.run`'s own nursery.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable

import trio

from perfgate.errors import NotFound, QueueFull, Unavailable, ValidationError
from perfgate.jobs.delayed import DueTimers
from perfgate.jobs.lifecycle import JobError, JobInput
from perfgate.jobs.queue import spec_of
from perfgate.logs import log_event
from perfgate.pool import Pool
from perfgate.store import FAILED, JobJournal, JobRecord

log = logging.getLogger("perfgate.jobs")

#: How often jobs owed a place are offered to a full queue again (and a failing journal
#: asked again to queue a due job).
RECOVERY_RETRY_S = 0.5


class Backlog:
    def __init__(
        self,
        *,
        pool: Pool,
        journal: JobJournal,
        on_final: Callable[[JobRecord], Awaitable[None]],
        clock: Callable[[], float],
    ) -> None:
        self._pool = pool
        self._journal = journal
        self._on_final = on_final
        self._clock = clock
        self._overflow: deque[JobRecord] = deque()
        self._feeding = False
        self._nursery: trio.Nursery | None = None
        self._timers = DueTimers()
        self._timers_changed = trio.Event()

    @property
    def owed(self) -> int:
        """Jobs waiting for room in the queue."""
        return len(self._overflow)

    @property
    def delayed(self) -> int:
        """Delayed jobs waiting here to be due."""
        return len(self._timers)

    async def recover(self, owed: list[JobRecord], delayed: list[JobRecord]) -> None:
        """At start: queue what fits of the jobs ``owed`` work (the rest when there is room),
        fail those whose task can no longer run, and arm the ``delayed`` jobs' timers."""
        for record in delayed:
            self._timers.arm(record.id, record.run_at or 0.0)
        self._overflow.extend(owed)
        await self._fail_unrunnable(self._resubmit())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Feed owed jobs and release due ones, until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                if self._overflow:
                    self._start_feeding()
                task_status.started()
                await self._release_due()
            finally:
                self._nursery = None

    def owe(self, record: JobRecord) -> None:
        """Queue ``record``'s job as soon as the queue has room."""
        self._overflow.append(record)
        self._start_feeding()

    def arm(self, job_id: str, run_at: float) -> None:
        self._timers.arm(job_id, run_at)
        self._timers_changed.set()

    def disarm(self, job_id: str) -> None:
        self._timers.disarm(job_id)

    def _resubmit(self) -> list[tuple[JobRecord, str]]:
        """Submit owed jobs while the queue has room; return those that cannot run."""
        unrunnable: list[tuple[JobRecord, str]] = []
        while self._overflow:
            record = self._overflow[0]
            try:
                self._pool.submit(spec_of(record))
            except (QueueFull, Unavailable):  # full, or draining: the job stays owed (queued)
                break
            except ValidationError as exc:
                # The task was removed from (or changed in) the configuration since.
                unrunnable.append((record, exc.message))
            self._overflow.popleft()
        return unrunnable

    async def _fail_unrunnable(self, unrunnable: list[tuple[JobRecord, str]]) -> None:
        for record, reason in unrunnable:
            log_event(log, logging.WARNING, "cannot recover job", job=record.id, error=reason)
            error = JobError("Unrecoverable", f"cannot run after restart: {reason}")
            failed = await self._journal.mark_finished(record.id, FAILED, error=error.to_json())
            if failed is not None:
                await self._on_final(failed)

    def _start_feeding(self) -> None:
        if not self._feeding and self._nursery is not None:
            self._feeding = True
            self._nursery.start_soon(self._feed)

    async def _feed(self) -> None:
        try:
            while self._overflow:
                await trio.sleep(RECOVERY_RETRY_S)
                await self._fail_unrunnable(self._resubmit())
        finally:
            self._feeding = False

    async def _release_due(self) -> None:
        """Queue each delayed job when it is due (the lifecycle's ``due``): until cancelled."""
        while True:
            next_due = self._timers.next_due()
            wait_s = math.inf if next_due is None else max(0.0, next_due - self._clock())
            with trio.move_on_after(wait_s):
                await self._timers_changed.wait()
            self._timers_changed = trio.Event()
            for job_id in self._timers.pop_due(self._clock()):
                try:
                    record = await self._journal.apply(job_id, JobInput.DUE)
                except NotFound:
                    continue  # swept, or never journalled
                except Unavailable as exc:  # the journal is failing: try again shortly
                    log_event(
                        log, logging.WARNING, "delayed job not queued", job=job_id, error=str(exc)
                    )
                    self._timers.arm(job_id, self._clock() + RECOVERY_RETRY_S)
                    continue
                if record is not None:  # None: cancelled meanwhile
                    self._overflow.append(record)
            await self._fail_unrunnable(self._resubmit())
            if self._overflow:
                self._start_feeding()
