"""The pool's books: its state, the live jobs' bookkeeping, and how their events are reported.

:class:`_Books` is the base of :class:`perfgate.pool.pool.Pool` (see its module docstring for
the whole): it holds the queue, the live jobs, the counters and the event sink, and the
synchronous steps every path through the pool shares (start and end an attempt, requeue,
finish, emit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import trio

from perfgate.config import PoolConfig, TaskConfig
from perfgate.jobs import lifecycle
from perfgate.jobs.lifecycle import (
    ErrorEvent,
    JobError,
    JobInput,
    JobState,
    LogEvent,
    PoolEvent,
    ResultEvent,
    StateEvent,
)
from perfgate.pool.job import JobHandle, JobOutcome, JobSpec
from perfgate.pool.queue import PriorityQueue
from perfgate.pool.stats import PoolStats
from perfgate.pool.task_limits import TaskLimits
from perfgate.pool.worker import Attempt, Worker
from perfgate.pool.workers import WorkerSet

log = logging.getLogger("perfgate.pool")

EventSink = Callable[[str, PoolEvent], None]


class _Job:
    """Mutable bookkeeping for one live job."""

    def __init__(self, spec: JobSpec, task: TaskConfig, handle: JobHandle) -> None:
        self.spec = spec
        self.task = task
        self.handle = handle
        self.priority = spec.priority or task.priority
        self.timeout_s = spec.timeout_s if spec.timeout_s is not None else task.timeout_s
        self.max_retries = spec.max_retries if spec.max_retries is not None else task.max_retries
        self.attempts = spec.attempts
        self.where = "queue"  # queue | running | backoff
        # What cancel() cancels: a command attempt's or a back-off's scope, or the watch of
        # the worker running this job.
        self.scope: trio.CancelScope | None = None
        self.attempt: Attempt | None = None  # a Python attempt, from assignment to its end
        self.worker: Worker | None = None
        self.cancel_requested = False
        self.log_lines = 0
        self.log_dropped = 0
        self.started_at: float | None = None
        self.args_bytes = 0
        self.finished = False
        self.attempt_started = 0.0  # trio clock
        self.holds_slot = False  # of its task's limits, from dispatch to the attempt's end


class _Books:
    """The pool's state and the bookkeeping steps shared by dispatching and attempts."""

    def __init__(
        self,
        config: PoolConfig,
        tasks: Mapping[str, TaskConfig],
        *,
        max_log_lines: int = 1000,
        on_event: EventSink | None = None,
    ) -> None:
        self.config = config
        self.tasks = dict(tasks)
        self.max_log_lines = max_log_lines
        self._on_event = on_event
        self._queue: PriorityQueue[_Job] = PriorityQueue(
            max_len=config.max_queue, aging_s=config.priority_aging_s
        )
        self._jobs: dict[str, _Job] = {}
        self._limits = TaskLimits(self.tasks)
        self._running = 0
        self._commands_running = 0
        self._mean_run_s: dict[str, float] = {}  # per task, for the prefetch rule
        self._wakeup = trio.lowlevel.ParkingLot()
        self._jobs_changed = trio.lowlevel.ParkingLot()
        self._nursery: trio.Nursery | None = None
        self._accepting = False
        self._closing = False
        self._stats = PoolStats()
        self._crew: WorkerSet  # built by the Pool, which holds the callbacks it needs

    # -- reporting ------------------------------------------------------------------------

    def _emit(self, job_id: str, event: PoolEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(job_id, event)
        except Exception:
            log.exception("on_event raised for job %s; event dropped", job_id)

    def _emit_state(
        self,
        job: _Job,
        job_input: JobInput,
        *,
        error: JobError | None = None,
        retry_in_s: float | None = None,
    ) -> None:
        """Move the job by the lifecycle table and report its new state (an input the table
        refuses is a bug here: :class:`~perfgate.jobs.lifecycle.InvalidTransition`)."""
        state = lifecycle.apply(job.handle.state, job_input).state
        job.handle.state = state
        self._emit(job.spec.id, StateEvent(state, job.attempts, error, retry_in_s))

    def _emit_log(self, job: _Job, stream: str, line: str) -> None:
        if job.log_lines >= self.max_log_lines:
            job.log_dropped += 1
            return
        job.log_lines += 1
        limit = self.config.max_log_line_bytes
        if len(line) > limit:
            line = line[:limit]
        self._emit(job.spec.id, LogEvent(line, stream))

    # -- bookkeeping ----------------------------------------------------------------------

    def _mark_started(self, job: _Job) -> float:
        job.attempts += 1
        if job.started_at is None:
            job.started_at = time.time()
        self._running += 1
        self._emit_state(job, JobInput.START)
        return trio.current_time()

    def _mark_ended(self, job: _Job, started: float, *, timed_out: bool) -> JobError | None:
        """Bookkeeping after an attempt; the error for a timeout or a cancel, if it was one."""
        self._running -= 1
        run_s = trio.current_time() - started
        self._stats.attempt_finished(run_s)
        name = job.task.name
        previous = self._mean_run_s.get(name)
        # Exponentially weighted: recent runs count most; one slow run does not stick.
        self._mean_run_s[name] = run_s if previous is None else 0.8 * previous + 0.2 * run_s
        if job.cancel_requested:
            return lifecycle.cancelled_error()
        if timed_out:
            self._stats.jobs["timed_out"] += 1
            return JobError(
                "Timeout",
                f"timed out after {job.timeout_s:g}s",
                kind="timeout",
                details={"timeout_s": job.timeout_s},
            )
        return None

    def _release_slot(self, job: _Job) -> None:
        if job.holds_slot:
            job.holds_slot = False
            self._limits.release(job.task.name)
            self._wakeup.unpark_all()

    def _requeue(self, job: _Job) -> None:
        self._release_slot(job)
        job.where = "queue"
        now = trio.current_time()
        self._queue.push(job.spec.id, job, job.priority, now, group=job.task.name, force=True)
        self._wakeup.unpark_all()

    def _finish(
        self, job: _Job, job_input: JobInput, *, result: Any = None, error: JobError | None = None
    ) -> None:
        job.finished = True
        self._release_slot(job)
        state = lifecycle.apply(job.handle.state, job_input).state
        outcome = JobOutcome(
            state=state,
            result=result,
            error=None if error is None else error.to_json(),
            attempts=job.attempts,
            started_at=job.started_at,
            finished_at=time.time(),
        )
        counter = {"succeeded": "completed", "cancelled": "cancelled"}.get(state, "failed")
        self._stats.jobs[counter] += 1
        if job.log_dropped:
            dropped = (
                f"[perfgate] {job.log_dropped} more log lines dropped "
                f"(max_log_lines={self.max_log_lines})"
            )
            self._emit(job.spec.id, LogEvent(dropped, "stderr"))
        if state == JobState.SUCCEEDED:
            self._emit(job.spec.id, ResultEvent(result))
            self._emit_state(job, job_input)
        else:
            assert error is not None
            if state != JobState.CANCELLED:
                self._emit(job.spec.id, ErrorEvent(error))
            self._emit_state(job, job_input, error=error)
        self._jobs.pop(job.spec.id, None)
        job.handle._finish(outcome)
        self._jobs_changed.unpark_all()


def _internal_error(exc: Exception) -> JobError:
    return JobError(
        "InternalError", f"{type(exc).__name__}: {exc}", kind="internal", permanent=True
    )
