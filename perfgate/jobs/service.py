"""Jobs: the journal, the pool, the result cache and the job channels, kept in step.

The guarantee is that an accepted job is never lost: ``submit`` returns (and the API answers
202) only after the job's row is committed, and jobs that were owed work when the process
died are re-queued by :meth:`JobService.run` on the next start (at-least-once; with Redis,
another instance reclaims them instead).

Where an accepted job goes is the :class:`~perfgate.jobs.queue.JobQueue`: this process's pool
(the default), or the Redis streams shared by several instances
(:mod:`perfgate.redis.queue`, with :class:`~perfgate.redis.journal.RedisJournal`).

:class:`JobService` is the public face; its parts, each in a module of its own:
:mod:`perfgate.jobs.submission` validates a submit body, :mod:`perfgate.jobs.events` carries
the pool's events to the journal and then the job channels (see the job lifecycle section of
docs/architecture.md), :mod:`perfgate.jobs.waiting` holds the long-polls and
:mod:`perfgate.jobs.backlog` the jobs owed a place in the queue (recovered, retried while it
was full, or delayed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from perfgate.config import DEFAULT_TENANT, Config
from perfgate.errors import (
    Conflict,
    NotFound,
    PerfgateError,
    QueueFull,
    Unavailable,
)
from perfgate.jobs.backlog import Backlog
from perfgate.jobs.events import EventPump, PoolEvents, Publish, ResultCacheLike
from perfgate.jobs.lifecycle import (
    RERUNNABLE_STATES,
    JobInput,
    PoolEvent,
    ResultEvent,
    StateEvent,
)
from perfgate.jobs.queue import JobQueue, LocalQueue, spec_of
from perfgate.jobs.submission import Prepared, prepare
from perfgate.jobs.waiting import LongPolls
from perfgate.logs import log_event
from perfgate.pool import JobSpec, Pool
from perfgate.readiness import Readiness
from perfgate.snapshots import JobsSnapshot
from perfgate.store import (
    CANCELLED,
    SCHEDULED,
    SUCCEEDED,
    JobJournal,
    JobRecord,
)

__all__ = ["JobService", "PoolEvents", "Publish", "ResultCacheLike"]

log = logging.getLogger("perfgate.jobs")
_MISS = object()  # a task may legitimately return None: a cache miss is not None


class JobService:
    def __init__(
        self,
        *,
        config: Config,
        pool: Pool,
        journal: JobJournal,
        publish: Publish,
        readiness: Readiness,
        events: PoolEvents | None = None,
        cache: ResultCacheLike | None = None,
        on_finished: Callable[[str, str, float | None], None] | None = None,
        queue: JobQueue | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``events`` is the pool's event sink (the pool was built with
        ``on_event=events.put``); without it, the pool reports to :meth:`on_pool_event`."""
        self.config = config
        self.pool = pool
        self.journal = journal
        self.queue: JobQueue = LocalQueue(pool) if queue is None else queue
        self.cache = cache
        self.events = PoolEvents() if events is None else events
        self._publish = publish
        self._readiness = readiness
        self._on_finished = on_finished
        self._clock = clock
        self._pump = EventPump(
            self.events,
            config=config,
            journal=journal,
            publish=publish,
            queue=self.queue,
            cache=cache,
            on_final=self._after_final,
        )
        self._polls = LongPolls()
        self._backlog = Backlog(pool=pool, journal=journal, on_final=self._after_final, clock=clock)
        self._reserved = 0
        self.recovered = 0

    # -- lifetime ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Re-queue jobs owed work from an earlier run, then apply pool events until cancelled.

        ``task_status.started(n)`` reports how many jobs were recovered.
        """
        recovered = await self.journal.recover()
        delayed = [] if self.queue.moves_due_jobs else await self.journal.scheduled()
        await self._backlog.recover(recovered, delayed)
        self.recovered = len(recovered)
        if recovered:
            log_event(log, logging.INFO, "recovered jobs", count=len(recovered))
        task_status.started(len(recovered))
        async with trio.open_nursery() as nursery:
            await nursery.start(self._backlog.run)
            await self._pump.run()

    async def drain(self, timeout_s: float) -> None:
        """Wake every long-poll (they answer with the job as it is), let the pool finish, then
        :meth:`settle`: once this returns, every job that finished is finished in the journal.
        """
        self._polls.wake_all()
        await self.pool.drain(timeout_s)
        await self.settle()

    async def settle(self) -> None:
        """Apply every pool event reported so far and wait until the journal committed them.

        Works whether or not :meth:`run` is still applying events (it waits for the batch in
        hand, then applies the rest itself), so it is also what runs after the pool closed,
        for the events of jobs that finished after the drain. Without it, a job that finished
        during a graceful stop stayed ``running`` in the journal and ran again on restart.
        """
        await self._pump.settle()

    def on_pool_event(self, job_id: str, event: PoolEvent) -> None:
        """Report a pool event (synchronous): what ``events.put`` does."""
        self.events.put(job_id, event)

    # -- submitting ----------------------------------------------------------------------

    async def submit(
        self, body: Any, *, tenant: str = DEFAULT_TENANT, job_id: str | None = None
    ) -> tuple[JobRecord, bool]:
        """Validate, journal and enqueue a job owned by ``tenant``. Returns ``(job, created)``.

        ``created`` is False when an ``idempotency_key`` matched an earlier job of the same
        tenant with the same body (that job is returned). ``job_id`` is the id a new job gets
        (default: a fresh one): the gateway subscribes to ``jobs:{id}`` before the job can
        start. Raises ValidationError (422), Conflict (409, same key and another body),
        QueueFull (429) or Unavailable (503, draining).
        """
        self._check_accepting()
        job = self._prepare(body, job_id, tenant)
        cached = await self._from_cache(job)
        if cached is not None:
            return cached
        self._reserve_slot(job.record)
        try:
            stored, created = await self.journal.create(
                job.record, idempotency_key=job.key, fingerprint=job.fingerprint
            )
            if created:
                self._enqueue(stored, job.spec)
        finally:
            self._release_slot(job.record)
        return stored, created

    async def submit_and_wait(
        self, body: Any, wait_s: float, *, tenant: str = DEFAULT_TENANT
    ) -> tuple[JobRecord, bool]:
        """:meth:`submit`, then :meth:`wait` up to ``wait_s`` for the job to finish: one
        request per job. The job is committed (as for ``submit``) whatever happens next; a
        cancelled wait leaves it queued or running."""
        record, created = await self.submit(body, tenant=tenant)
        if record.finished:
            return record, created
        # No checkpoint since the job was queued: the waiter is registered before it can
        # finish, and the record in hand is the first read.
        return await self._wait(record.id, wait_s, tenant, record), created

    async def submit_many(
        self, bodies: Sequence[Any], *, tenant: str = DEFAULT_TENANT
    ) -> list[tuple[JobRecord, bool] | PerfgateError]:
        """Submit several jobs, committed together (one journal transaction); answered per
        item in order: ``(job, created)`` or the error that item alone met (ValidationError,
        Conflict, or QueueFull for the items beyond the queue's room). One bad item never
        sinks the others. Raises Unavailable (503) for the whole call while draining."""
        self._check_accepting()
        answers: list[tuple[JobRecord, bool] | PerfgateError | None] = [None] * len(bodies)
        pending: list[tuple[int, Prepared]] = []
        for index, body in enumerate(bodies):
            try:
                job = self._prepare(body, None, tenant)
                cached = await self._from_cache(job)
                if cached is not None:
                    answers[index] = cached
                    continue
                self._reserve_slot(job.record)
            except PerfgateError as exc:
                answers[index] = exc
                continue
            pending.append((index, job))
        try:
            outcomes = await self.journal.create_many(
                [(job.record, job.key, job.fingerprint) for _, job in pending]
            )
        finally:
            for _, job in pending:
                self._release_slot(job.record)
        for (index, job), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, tuple) and outcome[1]:
                self._enqueue(outcome[0], job.spec)
            answers[index] = outcome
        return [answer for answer in answers if answer is not None]

    def _check_accepting(self) -> None:
        if not self._readiness.accepting:
            raise Unavailable(f"not accepting jobs ({self._readiness.reason()})")

    def _prepare(self, body: Any, job_id: str | None, tenant: str) -> Prepared:
        return prepare(
            body,
            config=self.config,
            validate=self.pool.validate,
            tenant=tenant,
            now=self._clock(),
            job_id=job_id,
        )

    async def _from_cache(self, job: Prepared) -> tuple[JobRecord, bool] | None:
        """The job, succeeded at once, if its task is cacheable and the cache has its result."""
        if not job.cacheable or self.cache is None or job.record.state == SCHEDULED:
            return None
        hit = await self.cache.get(job.record.task, job.record.args, _MISS)
        if hit is _MISS:
            return None
        return await self._create_cached(job.record, hit, job.key, job.fingerprint)

    def _reserve_slot(self, record: JobRecord) -> None:
        """Hold a queue slot across the journal write, so that a job that was journalled is
        never then refused by a full queue (other submits run while we wait for the commit).
        A delayed job takes no queue slot until it is due; those waiting here (SQLite) are
        bounded by ``[pool] max_queue`` too."""
        if record.state == SCHEDULED:
            limit = self.pool.config.max_queue
            if not self.queue.moves_due_jobs and self._backlog.delayed + self._reserved >= limit:
                raise QueueFull(f"too many delayed jobs ({limit} waiting)", retry_after_s=1.0)
        else:
            self.queue.check_room(self._reserved)
        self._reserved += 1

    def _release_slot(self, _record: JobRecord) -> None:
        self._reserved -= 1

    def _enqueue(self, record: JobRecord, spec: JobSpec) -> None:
        """Queue a job the journal has just created, or arm its timer if it is delayed (its
        channel then says so: the pool's ``queued`` follows when it is due)."""
        if record.state != SCHEDULED:
            self.queue.submit(spec)
            return
        if not self.queue.moves_due_jobs:
            self._backlog.arm(record.id, record.run_at or 0.0)
        self.on_pool_event(record.id, StateEvent(SCHEDULED, record.attempts))

    async def _create_cached(
        self, record: JobRecord, result: Any, key: str | None, fingerprint: str
    ) -> tuple[JobRecord, bool]:
        now = time.time()
        done = attrs.evolve(
            record,
            state=SUCCEEDED,
            result=result,
            cached=True,
            progress=1.0,
            started_at=now,
            finished_at=now,
        )
        stored, created = await self.journal.create(
            done, idempotency_key=key, fingerprint=fingerprint
        )
        if created:
            channel = f"jobs:{stored.id}"
            await self._publish(channel, ResultEvent(result, cached=True).to_json())
            await self._publish(channel, StateEvent(SUCCEEDED, 0).to_json())
        return stored, created

    # -- reading -------------------------------------------------------------------------

    async def get(self, job_id: str, *, tenant: str | None = None) -> JobRecord:
        """The job; :class:`NotFound` if there is none, or if ``tenant`` is given and does
        not own it (another tenant's job is indistinguishable from no job)."""
        record = await self.journal.get(job_id)
        if record is None or (tenant is not None and record.tenant != tenant):
            raise NotFound(f"no job {job_id!r}")
        return record

    async def wait(self, job_id: str, wait_s: float, *, tenant: str | None = None) -> JobRecord:
        """The job once it has finished, or as it is after ``wait_s`` (capped by config).
        ``tenant`` as for :meth:`get`.

        The waiter is registered *before* the first read of the journal: a job that finishes
        while that read is in flight then still wakes it (no lost wake-up).
        """
        return await self._wait(job_id, wait_s, tenant, None)

    async def _wait(
        self, job_id: str, wait_s: float, tenant: str | None, first: JobRecord | None
    ) -> JobRecord:
        wait_s = min(wait_s, self.config.http.max_wait_s)
        with self._polls.waiting(job_id) as waiter:
            record = first if first is not None else await self.get(job_id, tenant=tenant)
            if record.finished or wait_s <= 0 or not self._readiness.accepting:
                return record

            async def finished_elsewhere() -> bool:
                return (await self.get(job_id)).finished

            with trio.move_on_after(wait_s):
                await waiter.until_finished(self.queue.wait_poll_s, finished_elsewhere)
            if waiter.record is not None:
                return waiter.record  # the final record itself, as the journal committed it
        return await self.get(job_id)

    async def cancel(self, job_id: str, *, tenant: str | None = None) -> JobRecord:
        """Cancel a queued or running job; a finished job is returned unchanged (idempotent).
        ``tenant`` as for :meth:`get`: another tenant's job is :class:`NotFound`, untouched."""
        record = await self.get(job_id, tenant=tenant)
        if record.finished:
            return record
        cancelled = await self.journal.cancel(job_id)
        self.pool.cancel(job_id)
        self._backlog.disarm(job_id)
        if cancelled is not None:
            await self._after_final(cancelled)
            await self._publish(f"jobs:{job_id}", StateEvent(CANCELLED, record.attempts).to_json())
            return cancelled
        return await self.get(job_id)

    async def retry(self, job_id: str, *, tenant: str | None = None) -> JobRecord:
        """Put a failed, dead or cancelled job back in the queue (the lifecycle's ``rerun``:
        its attempts carry on, its outcome is cleared). Idempotent: a job that is queued,
        scheduled, running or retrying is returned as it is. A succeeded job is
        :class:`~perfgate.errors.Conflict` (409): submit it again instead. ``tenant`` as for
        :meth:`get`. Raises QueueFull (429), Unavailable (503, draining) and ValidationError
        (422) when its task is no longer configured."""
        self._check_accepting()
        record = await self.get(job_id, tenant=tenant)
        if record.state not in RERUNNABLE_STATES:
            if record.state == SUCCEEDED:
                raise Conflict(
                    f"job {job_id!r} succeeded: only a failed, dead or cancelled job can be "
                    "retried (submit it again for a new run)",
                    job_id=job_id,
                )
            return record
        if self.pool.is_live(job_id):
            # Its cancelled run is still being stopped: a new run now would meet the old
            # run's last events.
            raise Conflict(f"job {job_id!r} is still stopping; retry in a moment", job_id=job_id)
        spec = spec_of(record)
        self.pool.validate(spec)
        self._reserve_slot(record)
        try:
            rerun = await self.journal.apply(job_id, JobInput.RERUN)
            if rerun is not None:
                try:
                    self.queue.submit(spec)
                except (QueueFull, Unavailable):  # full, or draining: queued when there is room
                    self._backlog.owe(rerun)
        finally:
            self._release_slot(record)
        if rerun is None:  # another retry (or the sweep) came first: answer the job as it is
            return await self.retry(job_id, tenant=tenant)
        log_event(log, logging.INFO, "job retried", job=job_id, attempts=rerun.attempts)
        return rerun

    def stats(self) -> JobsSnapshot:
        return JobsSnapshot(
            events_pending=len(self.events),
            progress_dropped=self.events.progress_dropped,
            waiters=len(self._polls),
            recovered=self.recovered,
            overflow=self._backlog.owed,
            scheduled=self._backlog.delayed,
        )

    async def _after_final(self, record: JobRecord) -> None:
        self._polls.finished(record)
        if self._on_finished is not None:
            run_s = (
                record.finished_at - record.started_at
                if record.finished_at is not None and record.started_at is not None
                else None
            )
            self._on_finished(record.task, record.state, run_s)
