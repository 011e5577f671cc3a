"""Jobs: the journal, the pool, the result cache and the job channels, kept in step.

The guarantee is that an accepted job is never lost: ``submit`` returns (and the API answers
202) only after the job's row is committed, and jobs that were owed work when the process
died are re-queued by :meth:`JobService.run` on the next start (at-least-once; with Redis,
another instance reclaims them instead).

Where an accepted job goes is the :class:`~perfgate.jobs.queue.JobQueue`: this process's pool
(the default), or the Redis streams shared by several instances
(:mod:`perfgate.redis.queue`, with :class:`~perfgate.redis.journal.RedisJournal`).

The pool reports typed events synchronously (``on_pool_event``, see
:mod:`perfgate.jobs.lifecycle`); they are applied in order by one task, :meth:`_apply_events`,
which writes the journal first and publishes the event's JSON to ``jobs:{id}`` second, so a
subscriber never sees a state the journal does not hold (the journal refuses what the
lifecycle table refuses; see the job lifecycle section of docs/architecture.md). Events are
applied in groups: each job's events in order, different jobs' concurrently, so the journal
commits a group's transitions together (one fsync) instead of one commit per event.
A long-poll woken by its job's final state answers with the record that state was committed
as, without reading the journal again.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs
import trio

from perfgate.config import DEFAULT_TENANT, Config, TaskConfig
from perfgate.errors import (
    Conflict,
    NotFound,
    PerfgateError,
    QueueFull,
    Unavailable,
    ValidationError,
)
from perfgate.jobs.delayed import DueTimers, due_time
from perfgate.jobs.durable import JOURNAL_FAILURES, write_durably
from perfgate.jobs.lifecycle import (
    RERUNNABLE_STATES,
    JobError,
    JobInput,
    LogEvent,
    PoolEvent,
    ProgressEvent,
    ResultEvent,
    StateEvent,
)
from perfgate.jobs.queue import JobQueue, LocalQueue, spec_of
from perfgate.logs import log_event
from perfgate.pool import JobSpec, Pool, check_args
from perfgate.readiness import Readiness
from perfgate.schema import SUBMIT_JOB
from perfgate.snapshots import JobsSnapshot
from perfgate.store import (
    CANCELLED,
    FAILED,
    FINISHED_STATES,
    QUEUED,
    RETRYING,
    RUNNING,
    SCHEDULED,
    SUCCEEDED,
    JobJournal,
    JobRecord,
    body_fingerprint,
    new_job_id,
)

log = logging.getLogger("perfgate.jobs")

Publish = Callable[[str, Any], Awaitable[Any]]
#: Progress events beyond this many pending are dropped (the next one supersedes them anyway);
#: state, result, error and log events are never dropped.
MAX_PENDING_PROGRESS = 10_000
RECOVERY_RETRY_S = 0.5
#: Pool events applied as one group (each job's in order, jobs concurrently).
APPLY_GROUP_MAX = 1024
_MISS = object()  # a task may legitimately return None: a cache miss is not None
#: Submit fields added after idempotency keys existed: they count in a fingerprint only when given.
_LATER_FIELDS = frozenset({"delay_s", "run_at"})


class ResultCacheLike(Protocol):
    """What the service needs of :class:`perfgate.cache.ResultCache`."""

    async def get(self, task: str, args: Mapping[str, Any], default: Any = None) -> Any: ...
    async def put(self, task: str, args: Mapping[str, Any], result: Any) -> Any: ...


@attrs.frozen
class _Prepared:
    """A validated submit: what to journal, what to queue."""

    record: JobRecord
    spec: JobSpec
    key: str | None
    fingerprint: str
    cacheable: bool


@attrs.define
class _Waiters:
    event: trio.Event = attrs.field(factory=trio.Event)
    count: int = 0
    #: The job's final record, set with ``event`` when it finished here: no read needed.
    record: JobRecord | None = None


class JobService:
    def __init__(
        self,
        *,
        config: Config,
        pool: Pool,
        journal: JobJournal,
        publish: Publish,
        readiness: Readiness,
        cache: ResultCacheLike | None = None,
        on_finished: Callable[[str, str, float | None], None] | None = None,
        queue: JobQueue | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.pool = pool
        self.journal = journal
        self.queue: JobQueue = LocalQueue(pool) if queue is None else queue
        self.cache = cache
        self._publish = publish
        self._readiness = readiness
        self._on_finished = on_finished
        self._events: deque[tuple[str, PoolEvent]] = deque()
        self._progress_pending = 0
        self._progress_dropped = 0
        self._events_ready = trio.Event()
        self._apply_lock = trio.Lock()
        self._waiters: dict[str, _Waiters] = {}
        self._results: dict[str, Any] = {}
        self._reserved = 0
        self._overflow: deque[JobRecord] = deque()
        self._feeding = False
        self._nursery: trio.Nursery | None = None
        self.recovered = 0
        self._clock = clock
        #: Delayed jobs waiting here (SQLite journal); with Redis the queue moves them.
        self._timers = DueTimers()
        self._timers_changed = trio.Event()

    # -- lifetime ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Re-queue jobs owed work from an earlier run, then apply pool events until cancelled.

        ``task_status.started(n)`` reports how many jobs were recovered.
        """
        recovered = await self.journal.recover()
        if not self.queue.moves_due_jobs:
            for record in await self.journal.scheduled():
                self._timers.arm(record.id, record.run_at or 0.0)
        self._overflow.extend(recovered)
        await self._fail_unrunnable(self._resubmit_overflow())
        self.recovered = len(recovered)
        if recovered:
            log_event(log, logging.INFO, "recovered jobs", count=len(recovered))
        task_status.started(len(recovered))
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self._overflow:
                self._start_feeding()
            nursery.start_soon(self._release_due)
            await self._apply_events()

    async def drain(self, timeout_s: float) -> None:
        """Wake every long-poll (they answer with the job as it is), let the pool finish, then
        :meth:`settle`: once this returns, every job that finished is finished in the journal.
        """
        for waiters in self._waiters.values():
            waiters.event.set()
        await self.pool.drain(timeout_s)
        await self.settle()

    async def settle(self) -> None:
        """Apply every pool event reported so far and wait until the journal committed them.

        Works whether or not :meth:`run` is still applying events (it waits for the batch in
        hand, then applies the rest itself), so it is also what runs after the pool closed,
        for the events of jobs that finished after the drain. Without it, a job that finished
        during a graceful stop stayed ``running`` in the journal and ran again on restart.
        """
        async with self._apply_lock:
            await self._apply_pending()
        await self.journal.flush()

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
        if job.cacheable and self.cache is not None and job.record.state != SCHEDULED:
            hit = await self.cache.get(job.record.task, job.record.args, _MISS)
            if hit is not _MISS:
                return await self._create_cached(job.record, hit, job.key, job.fingerprint)
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
        pending: list[tuple[int, _Prepared]] = []
        for index, body in enumerate(bodies):
            try:
                job = self._prepare(body, None, tenant)
                if job.cacheable and self.cache is not None and job.record.state != SCHEDULED:
                    hit = await self.cache.get(job.record.task, job.record.args, _MISS)
                    if hit is not _MISS:
                        answers[index] = await self._create_cached(
                            job.record, hit, job.key, job.fingerprint
                        )
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

    def _prepare(self, body: Any, job_id: str | None, tenant: str) -> _Prepared:
        """Validate a submit body into the job to journal and the spec to queue."""
        request = SUBMIT_JOB.parse(body)
        now = self._clock()
        due = due_time(request, now)  # 422 naming delay_s / run_at
        task = self._task(request["task"])
        args = check_args(task, request["args"] or {})  # 422 naming each bad argument
        spec = JobSpec(
            id=job_id or new_job_id(),
            task=task.name,
            args=args,
            priority=request["priority"] or task.priority,
            timeout_s=request["timeout_s"] or task.timeout_s,
            max_retries=(
                request["max_retries"] if request["max_retries"] is not None else task.max_retries
            ),
        )
        self.pool.validate(spec)
        key = request["idempotency_key"]
        # Fields added later count only when given, so a key's fingerprint stays the same
        # across an upgrade.
        fingerprint = body_fingerprint(
            {
                k: v
                for k, v in request.items()
                if k != "idempotency_key" and not (k in _LATER_FIELDS and v is None)
            }
        )
        record = JobRecord(
            id=spec.id,
            task=spec.task,
            args=args,
            priority=spec.priority or task.priority,
            timeout_s=spec.timeout_s,
            max_retries=spec.max_retries or 0,
            idempotency_key=key,
            fingerprint=fingerprint,
            tenant=tenant,
            created_at=now,
            state=QUEUED if due is None else SCHEDULED,
            run_at=due,
        )
        return _Prepared(record, spec, key, fingerprint, task.cacheable)

    def _task(self, name: str) -> TaskConfig:
        task = self.config.tasks.get(name)
        if task is None:
            raise ValidationError(
                f"unknown task {name!r}; configured: {', '.join(sorted(self.config.tasks))}",
                errors=[{"field": "task", "message": "unknown task"}],
            )
        return task

    def _reserve_slot(self, record: JobRecord) -> None:
        """Hold a queue slot across the journal write, so that a job that was journalled is
        never then refused by a full queue (other submits run while we wait for the commit).
        A delayed job takes no queue slot until it is due; those waiting here (SQLite) are
        bounded by ``[pool] max_queue`` too."""
        if record.state == SCHEDULED:
            limit = self.pool.config.max_queue
            if not self.queue.moves_due_jobs and len(self._timers) + self._reserved >= limit:
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
            self._timers.arm(record.id, record.run_at or 0.0)
            self._timers_changed.set()
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
        waiters = self._waiters.setdefault(job_id, _Waiters())
        waiters.count += 1
        try:
            record = first if first is not None else await self.get(job_id, tenant=tenant)
            if record.finished or wait_s <= 0 or not self._readiness.accepting:
                return record
            with trio.move_on_after(wait_s):
                await self._wait_finished(job_id, waiters.event)
            if waiters.record is not None:
                return waiters.record  # the final record itself, as the journal committed it
        finally:
            waiters.count -= 1
            if waiters.count == 0 and self._waiters.get(job_id) is waiters:
                del self._waiters[job_id]
        return await self.get(job_id)

    async def _wait_finished(self, job_id: str, event: trio.Event) -> None:
        """Until ``event`` is set (the job finished here) or, when the job may finish in
        another process, until a re-read every ``queue.wait_poll_s`` finds it finished."""
        poll_s = self.queue.wait_poll_s
        if poll_s is None:
            await event.wait()
            return
        while not event.is_set():
            with trio.move_on_after(poll_s):
                await event.wait()
            if not event.is_set() and (await self.get(job_id)).finished:
                return

    async def cancel(self, job_id: str, *, tenant: str | None = None) -> JobRecord:
        """Cancel a queued or running job; a finished job is returned unchanged (idempotent).
        ``tenant`` as for :meth:`get`: another tenant's job is :class:`NotFound`, untouched."""
        record = await self.get(job_id, tenant=tenant)
        if record.finished:
            return record
        cancelled = await self.journal.cancel(job_id)
        self.pool.cancel(job_id)
        self._timers.disarm(job_id)
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
                    self._overflow.append(rerun)
                    self._start_feeding()
        finally:
            self._release_slot(record)
        if rerun is None:  # another retry (or the sweep) came first: answer the job as it is
            return await self.retry(job_id, tenant=tenant)
        log_event(log, logging.INFO, "job retried", job=job_id, attempts=rerun.attempts)
        return rerun

    def stats(self) -> JobsSnapshot:
        return JobsSnapshot(
            events_pending=len(self._events),
            progress_dropped=self._progress_dropped,
            waiters=sum(w.count for w in self._waiters.values()),
            recovered=self.recovered,
            overflow=len(self._overflow),
            scheduled=len(self._timers),
        )

    # -- pool events ---------------------------------------------------------------------

    def on_pool_event(self, job_id: str, event: PoolEvent) -> None:
        """Called by the pool, synchronously: queue the event for :meth:`_apply_events`."""
        if isinstance(event, ProgressEvent):
            if self._progress_pending >= MAX_PENDING_PROGRESS:
                self._progress_dropped += 1
                return
            self._progress_pending += 1
        self._events.append((job_id, event))
        self._events_ready.set()

    async def _apply_events(self) -> None:
        while True:
            await self._events_ready.wait()
            self._events_ready = trio.Event()
            async with self._apply_lock:
                await self._apply_pending()

    async def _apply_pending(self) -> None:
        """Apply queued events: a group at a time, each job's events in order, different
        jobs' concurrently, so that their journal writes share a commit.

        An event leaves the queue only once applied, so one interrupted by a cancellation is
        applied again by the next :meth:`settle` (the journal refuses a transition made
        twice), and still in order with the rest of its job's events."""
        while self._events:
            group = [self._events.popleft() for _ in range(min(len(self._events), APPLY_GROUP_MAX))]
            applied = [False] * len(group)
            chains: dict[str, list[int]] = {}
            for index, (job_id, _event) in enumerate(group):
                chains.setdefault(job_id, []).append(index)
            try:
                if len(chains) == 1:
                    await self._apply_chain(group, next(iter(chains.values())), applied)
                else:
                    async with trio.open_nursery() as nursery:
                        for indexes in chains.values():
                            nursery.start_soon(self._apply_chain, group, indexes, applied)
            finally:
                # Unapplied events go back in front, in their order (sync: safe when cancelled).
                self._events.extendleft(
                    reversed([item for item, done in zip(group, applied, strict=True) if not done])
                )
                for (_job_id, event), done in zip(group, applied, strict=True):
                    if done and isinstance(event, ProgressEvent):
                        self._progress_pending -= 1

    async def _apply_chain(
        self, group: list[tuple[str, PoolEvent]], indexes: list[int], applied: list[bool]
    ) -> None:
        """Apply one job's events of a group, in order; contain every failure."""
        for index in indexes:
            job_id, event = group[index]
            try:
                await self._apply(job_id, event)
            except JOURNAL_FAILURES as exc:  # a progress or log line lost, or a publish
                log_event(
                    log,
                    logging.WARNING,
                    "job event not applied",
                    job=job_id,
                    event=type(event).__name__,
                    error=str(exc),
                )
            except Exception as exc:  # contain one job's failure; never stop the pump
                log_event(
                    log,
                    logging.ERROR,
                    "failed to apply job event",
                    exc_info=exc,
                    job=job_id,
                    event=type(event).__name__,
                )
            applied[index] = True

    async def _apply(self, job_id: str, event: PoolEvent) -> None:
        if not self.queue.owns_events(job_id):
            return  # another instance took this job over: its run here is being stopped
        channel = f"jobs:{job_id}"
        if isinstance(event, ProgressEvent):
            await self.journal.set_progress(job_id, event.fraction, event.message)
        elif isinstance(event, LogEvent):
            await self.journal.append_log(job_id, event.line, event.stream)
        elif isinstance(event, ResultEvent):
            self._results[job_id] = event.result
        elif isinstance(event, StateEvent) and not await self._apply_state(job_id, event):
            return  # the journal refused the transition (e.g. already cancelled)
        await self._publish(channel, event.to_json())

    async def _apply_state(self, job_id: str, event: StateEvent) -> bool:
        state = event.state
        error = None if event.error is None else event.error.to_json()
        if state in (QUEUED, SCHEDULED):
            return True  # created (or due) as the journal holds it: nothing to write
        if state == RUNNING:
            written = await write_durably(
                self.journal.mark_running, job_id, job_id=job_id, state=state
            )
            return written is not None
        if state == RETRYING:
            written = await write_durably(
                functools.partial(self.journal.mark_retrying, job_id, error=error),
                job_id=job_id,
                state=state,
            )
            return written is not None
        if state in FINISHED_STATES:
            result = self._results.get(job_id)
            record = await write_durably(
                functools.partial(
                    self.journal.mark_finished, job_id, state, result=result, error=error
                ),
                job_id=job_id,
                state=str(state),
            )
            self._results.pop(job_id, None)
            if record is None:
                return False
            if state == SUCCEEDED and self.cache is not None:
                task = self.config.tasks.get(record.task)
                if task is not None and task.cacheable:
                    await self.cache.put(record.task, record.args, result)
            await self._after_final(record)
            return True
        return True

    async def _after_final(self, record: JobRecord) -> None:
        waiters = self._waiters.get(record.id)
        if waiters is not None:
            waiters.record = record
            waiters.event.set()
        if self._on_finished is not None:
            run_s = (
                record.finished_at - record.started_at
                if record.finished_at is not None and record.started_at is not None
                else None
            )
            self._on_finished(record.task, record.state, run_s)

    # -- recovery ------------------------------------------------------------------------

    def _resubmit_overflow(self) -> list[tuple[JobRecord, str]]:
        """Submit recovered jobs while the queue has room; return those that cannot run."""
        unrunnable: list[tuple[JobRecord, str]] = []
        while self._overflow:
            record = self._overflow[0]
            spec = spec_of(record)
            try:
                self.pool.submit(spec)
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
            failed = await self.journal.mark_finished(record.id, FAILED, error=error.to_json())
            if failed is not None:
                await self._after_final(failed)

    def _start_feeding(self) -> None:
        if not self._feeding and self._nursery is not None:
            self._feeding = True
            self._nursery.start_soon(self._feed_overflow)

    async def _feed_overflow(self) -> None:
        try:
            while self._overflow:
                await trio.sleep(RECOVERY_RETRY_S)
                await self._fail_unrunnable(self._resubmit_overflow())
        finally:
            self._feeding = False

    # -- delayed jobs (SQLite journal; with Redis the queue moves them) ------------------

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
                    record = await self.journal.apply(job_id, JobInput.DUE)
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
            await self._fail_unrunnable(self._resubmit_overflow())
            if self._overflow:
                self._start_feeding()
