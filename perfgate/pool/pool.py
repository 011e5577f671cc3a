"""The pool: a priority queue of jobs, warm Python workers, command processes, one cancel scope
per attempt, retries, and a shutdown that leaves no child behind.

Structure (every task lives in the pool's nursery or in the one its worker set owns)::

    Pool nursery
    ├── dispatcher       hands the best queued job to a worker (or starts a command) when
    │                    there is room; never overtakes the best job, so priorities hold
    ├── worker set       WorkerSet.run (workers.py), its own nursery; stops every worker on exit
    │   ├── worker readers  one per warm worker (worker.py): routes its frames, ends its
    │   │                   attempts, sees it die; reads under the running job's deadline
    │   ├── worker starts   background starts (warm-up, growth, replacements) and stops
    │   └── idle reaper     stops workers idle past idle_timeout_s, down to min_workers
    ├── worker flushes   a write of the frames queued for a worker (jobs sent, jobs skipped)
    ├── command attempts one per command attempt: cancel scope + deadline around it
    └── back-off tasks   one per job waiting to be retried

Modules: this one is the public face (lifetime, submit, cancel, drain, stats); the dispatch
step is in :mod:`perfgate.pool.dispatch`, the ends of attempts, retries and the command path
in :mod:`perfgate.pool.attempts`, and the state and event reporting they share in
:mod:`perfgate.pool.books`.

A Python attempt has no task of its own: its worker's reader reports its start and end through
callbacks, and the worker's *watch* scope carries its timeout and its cancellation (see
worker.py). When a worker's frames have been routed, the reader runs the dispatch step itself,
so a worker that finished a job gets the next one without waiting for another task.

Room for a Python job is an idle worker (most recently used first, so that surplus workers idle
out); failing that the pool grows, up to ``max_workers``, in the background. A short job may
also be *prefetched* behind a busy worker's short jobs (see :mod:`perfgate.pool.prefetch`): it is
sent ahead so that the worker never idles through a round trip, and it only becomes an attempt
(``running``, timeout clock started) when the worker begins it. Commands run at most
``max_workers`` at a time, each in a fresh process group. Workers are recycled between jobs,
never mid-job.

A job moves through the lifecycle table of :mod:`perfgate.jobs.lifecycle` (see the job
lifecycle section of docs/architecture.md): :func:`~perfgate.jobs.lifecycle.after_attempt`
decides what follows an attempt (success, retry, or ``failed``/``dead``), and every move is
reported as a typed event (:data:`~perfgate.jobs.lifecycle.PoolEvent`).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from perfgate.config import PoolConfig, TaskConfig
from perfgate.errors import QueueFull, Unavailable
from perfgate.jobs import lifecycle
from perfgate.jobs.lifecycle import (
    JobInput,
    JobState,
    StateEvent,
)
from perfgate.pool.books import EventSink, _Job
from perfgate.pool.dispatch import _Dispatcher
from perfgate.pool.job import JobHandle, JobSpec
from perfgate.pool.validation import check_spec
from perfgate.pool.workers import WorkerSet
from perfgate.snapshots import PoolSnapshot, QueueDepth, TaskLimitStats, WorkerCounts


class Pool(_Dispatcher):
    def __init__(
        self,
        config: PoolConfig,
        tasks: Mapping[str, TaskConfig],
        *,
        max_log_lines: int = 1000,
        on_event: EventSink | None = None,
    ) -> None:
        super().__init__(config, tasks, max_log_lines=max_log_lines, on_event=on_event)
        self._crew = WorkerSet(
            config,
            self._stats,
            self._wakeup,
            on_interrupt=self._interrupted,
            after_frames=self._dispatch_after_frames,
        )
        self._lifetime_cm: Any = None

    # -- lifetime -------------------------------------------------------------------------

    async def __aenter__(self) -> Pool:
        self._lifetime_cm = self._lifetime()
        result: Pool = await self._lifetime_cm.__aenter__()
        return result

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        result: bool | None = await self._lifetime_cm.__aexit__(*exc_info)
        return result

    async def run(self, *, task_status: trio.TaskStatus[Pool] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the pool until cancelled; ``task_status.started(pool)`` once workers are warm."""
        async with self:
            task_status.started(self)
            await trio.sleep_forever()

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[Pool]:
        body_error: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self._crew.run)
                nursery.start_soon(self._dispatch)
                self._accepting = True
                try:
                    yield self
                except BaseException as exc:
                    # Re-raised below, outside the nursery, so that the caller sees its own
                    # exception rather than an ExceptionGroup around it.
                    body_error = exc
                finally:
                    self._accepting = False
                    self._closing = self._crew.closing = True
                    nursery.cancel_scope.cancel()
        finally:
            # The worker set's run has stopped every worker by now (it is one of our tasks).
            for job in list(self._jobs.values()):
                job.handle._finish(None)
            self._jobs.clear()
            self._nursery = None
        if body_error is not None:
            raise body_error

    # -- submitting -----------------------------------------------------------------------

    def validate(self, spec: JobSpec) -> TaskConfig:
        """Check ``spec`` against configuration; raise :class:`ValidationError` (422) if bad."""
        return check_spec(spec, self.tasks)[0]

    def submit(self, spec: JobSpec) -> JobHandle:
        """Validate and enqueue; synchronous, never blocks.

        Raises :class:`ValidationError` (bad spec), :class:`QueueFull` (``max_queue`` jobs are
        waiting; ``retry_after_s`` estimates when a slot frees), :class:`Unavailable` (the pool
        is draining or closed), or ``ValueError`` for a job id that is already live.
        """
        if not self._accepting:
            raise Unavailable("the pool is not accepting jobs (starting, draining or closed)")
        task, args_bytes = check_spec(spec, self.tasks)
        if spec.id in self._jobs:
            raise ValueError(f"job {spec.id!r} is already in the pool")
        handle = JobHandle(spec)
        job = _Job(spec, task, handle)
        job.args_bytes = args_bytes
        now = trio.current_time()
        if not self._queue.push(spec.id, job, job.priority, now, group=task.name):
            self._stats.jobs["rejected"] += 1
            raise QueueFull(
                f"the job queue is full ({self.config.max_queue} waiting)",
                retry_after_s=self._retry_after_s(),
            )
        self._jobs[spec.id] = job
        self._stats.jobs["submitted"] += 1
        self._emit(spec.id, StateEvent(JobState.QUEUED, job.attempts))  # created, not a move
        self._wakeup.unpark_all()
        return handle

    def _retry_after_s(self) -> float:
        estimate = len(self._queue) * self._stats.mean_run_s / max(1, self.config.max_workers)
        return float(min(60.0, max(1.0, math.ceil(estimate))))

    def is_live(self, job_id: str) -> bool:
        """Whether the pool still holds the job (queued, running, or being stopped)."""
        return job_id in self._jobs

    def cancel(self, job_id: str) -> bool:
        """Cancel a live job; True if it was live (it ends ``cancelled``), False otherwise.

        Idempotent and synchronous. A queued job is removed at once; a running attempt's scope
        is cancelled, which stops its process (the ``cancelled`` event follows when it is
        reaped); a job waiting to be retried stops waiting.
        """
        job = self._jobs.get(job_id)
        if job is None:
            return False
        if job.where == "queue" and self._queue.remove(job_id) is not None:
            self._finish(job, JobInput.CANCEL, error=lifecycle.cancelled_error())
            return True
        job.cancel_requested = True
        if job.scope is not None:
            job.scope.cancel()
        elif job.attempt is not None and job.worker is not None and not job.attempt.is_started:
            # Prefetched: take it back; it never began, so it costs no attempt.
            attempt, worker = job.attempt, job.worker
            if worker.skip(attempt):
                assert self._nursery is not None
                self._nursery.start_soon(worker.flush)
            self._python_ended(job, worker, attempt)
        return True

    async def drain(self, timeout_s: float) -> bool:
        """Stop accepting jobs and wait for the live ones (queued, running, retrying) to finish.

        Returns True if all finished, False if ``timeout_s`` passed first (they keep running
        until the pool is left). A checkpoint; cancelling it only stops the waiting.
        """
        self._accepting = False
        with trio.move_on_after(timeout_s):
            while self._jobs:
                await self._jobs_changed.park()
        return not self._jobs

    # -- observing ------------------------------------------------------------------------

    def queued(self) -> int:
        """How many jobs wait in the queue: what admission needs, without the cost of
        :meth:`stats` (run-time percentiles) on every submit."""
        return len(self._queue)

    def queue_room(self) -> int:
        """How many more jobs the queue takes before ``[pool] max_queue`` (0 when full)."""
        return max(0, self.config.max_queue - len(self._queue))

    def stats(self) -> PoolSnapshot:
        """A snapshot: workers, queue depth, job counters, run times, restarts."""
        idle = len(self._crew.idle)
        total = len(self._crew.all)
        workers = WorkerCounts(
            idle=idle,
            busy=total - idle,
            starting=self._crew.starting,
            total=total,
            min=self.config.min_workers,
            max=self.config.max_workers,
        )
        depth = self._queue.depth()
        queue = QueueDepth(**depth, total=len(self._queue), max=self.config.max_queue)
        return self._stats.snapshot(
            workers=workers,
            queue=queue,
            running=self._running,
            accepting=self._accepting,
            limited=self._limits_snapshot(),
        )

    def _limits_snapshot(self) -> dict[str, TaskLimitStats]:
        """Per limited task: jobs queued, whether its limit holds them back now, running."""
        limits = self._limits
        if not limits.limited:
            return {}
        blocked = limits.blocked(trio.current_time())
        waiting = self._queue.waiting(limits.limited)
        return {
            name: TaskLimitStats(
                waiting=waiting.get(name, 0),
                held=name in blocked and waiting.get(name, 0) > 0,
                running=limits.running.get(name),
                max_concurrency=self.tasks[name].max_concurrency,
                rate_per_s=self.tasks[name].rate_per_s,
            )
            for name in sorted(limits.limited)
        }
