"""The pool: a priority queue of jobs, warm Python workers, command processes, one cancel scope
per attempt, retries, and a shutdown that leaves no child behind.

Structure (all tasks live in the pool's own nursery)::

    Pool nursery
    ├── dispatcher       hands the best queued job to a worker (or starts a command) when
    │                    there is room; never overtakes the best job, so priorities hold
    ├── worker readers   one per warm worker (worker.py): routes its frames, ends its
    │                    attempts, sees it die; reads under the running job's deadline
    ├── worker starts    background starts (warm-up, growth, replacements) and stops
    ├── idle reaper      stops workers idle past idle_timeout_s, down to min_workers
    ├── command attempts one per command attempt: cancel scope + deadline around it
    └── back-off tasks   one per job waiting to be retried

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

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from perfgate.config import PoolConfig, TaskConfig
from perfgate.errors import QueueFull, Unavailable
from perfgate.jobs import lifecycle
from perfgate.jobs.lifecycle import (
    ErrorEvent,
    JobError,
    JobInput,
    JobState,
    LogEvent,
    PoolEvent,
    ProgressEvent,
    ResultEvent,
    StateEvent,
)
from perfgate.pool import prefetch
from perfgate.pool.backoff import backoff_delay_s
from perfgate.pool.command import run_command
from perfgate.pool.job import JobHandle, JobOutcome, JobSpec
from perfgate.pool.process import describe_exit
from perfgate.pool.queue import PriorityQueue
from perfgate.pool.stats import PoolStats
from perfgate.pool.task_limits import TaskLimits
from perfgate.pool.template import render_argv
from perfgate.pool.validation import check_args, check_spec
from perfgate.pool.worker import Attempt, Worker
from perfgate.pool.workers import WorkerSet
from perfgate.snapshots import PoolSnapshot, QueueDepth, TaskLimitStats, WorkerCounts

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


class Pool:
    """The subprocess worker pool. Use as ``async with Pool(config, tasks) as pool:``.

    Entering starts ``min_workers`` warm workers and returns once they are ready. Leaving, in
    any way (normally, by cancellation, or by an exception), cancels every attempt and stops
    every child: SIGTERM, SIGKILL after ``kill_grace_s``, reaped. To finish work first, call
    :meth:`drain`. Jobs still live at exit are interrupted: no final state event is emitted for
    them (so a journal keeps them resumable) and their :meth:`JobHandle.wait` raises
    :class:`perfgate.errors.Unavailable`.

    ``on_event(job_id, event)`` is called synchronously from the pool's tasks, for every state
    transition, progress report, log line, result and final error; it must not block. An
    exception it raises is logged and ignored.
    """

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
                self._nursery = self._crew.nursery = nursery
                async with trio.open_nursery() as warmup:
                    for _ in range(self.config.min_workers):
                        warmup.start_soon(self._crew.add_idle)
                nursery.start_soon(self._dispatch)
                nursery.start_soon(self._crew.reap_idle)
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
            with trio.CancelScope(shield=True):
                await self._crew.stop_all()
            for job in list(self._jobs.values()):
                job.handle._finish(None)
            self._jobs.clear()
            self._nursery = self._crew.nursery = None
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

    # -- dispatching ----------------------------------------------------------------------

    async def _dispatch(self) -> None:
        """Run :meth:`_dispatch_ready` whenever something may have made room or work (or a
        rate-limited task's next token comes)."""
        while True:
            token_in_s = self._dispatch_ready()
            with trio.move_on_after(math.inf if token_in_s is None else token_in_s):
                await self._wakeup.park()

    def _dispatch_ready(self) -> float | None:
        """Start queued jobs, best first, for as long as there is room for the best one.

        Room for a Python job: an idle worker, else a new worker (up to ``max_workers``), else
        a busy worker with nothing prefetched yet. Room for a command: fewer than
        ``max_workers`` commands running. The best job waits at the head of the queue until
        there is room for it: nothing overtakes it, so priorities stay strict. A task at its
        own limit (:mod:`perfgate.pool.task_limits`) is skipped, not waited for. Synchronous;
        called by the dispatcher task and by worker readers after they routed frames.
        Returns the seconds until a rate-limited task with queued jobs gets a token, if any.
        """
        if self._closing or self._nursery is None:
            return None
        now = trio.current_time()
        touched: list[Worker] = []
        blocked = self._limits.blocked(now)
        while True:
            job = self._queue.peek(now, blocked)
            if job is None:
                break
            worker: Worker | None = None
            if job.task.command is not None:
                if self._commands_running >= self.config.max_workers:
                    break
                self._commands_running += 1
            else:
                worker = self._crew.pick(self._prefetch_rule(job))
                if worker is None:
                    self._crew.grow()  # the job waits for the new worker, or any that frees
                    break
            self._queue.pop(now, blocked)
            job.where = "running"
            if self._limits.acquire(job.task.name, now):
                job.holds_slot = True
                blocked = self._limits.blocked(now)
            if worker is None:
                self._nursery.start_soon(self._run_attempt, job)
            elif self._assign(job, worker) and worker not in touched:
                touched.append(worker)
        for worker in touched:  # one write per worker for all the jobs it was given
            if worker.send_queued():
                self._nursery.start_soon(worker.flush)
        if not blocked:
            return None
        return self._limits.next_token_in(now, frozenset(self._queue.waiting(blocked)))

    def _release_slot(self, job: _Job) -> None:
        if job.holds_slot:
            job.holds_slot = False
            self._limits.release(job.task.name)
            self._wakeup.unpark_all()

    def _dispatch_after_frames(self) -> None:
        """A worker reader's dispatch: if a task now waits for a token, the dispatcher task
        (which may be parked without a deadline) must wake to time it."""
        if self._dispatch_ready() is not None:
            self._wakeup.unpark_all()

    def _prefetch_rule(self, job: _Job) -> Callable[[Worker], bool] | None:
        """Whether ``job`` may be queued behind a busy worker's jobs: only a short job with a
        small frame, and only behind short jobs (see :mod:`perfgate.pool.prefetch`)."""
        if job.args_bytes > prefetch.MAX_FRAME_BYTES or not prefetch.is_short(
            self._mean_run_s.get(job.task.name)
        ):
            return None

        def behind(worker: Worker) -> bool:
            return prefetch.may_queue_behind([attempt.expected_s for attempt in worker.pending])

        return behind

    async def _run_attempt(self, job: _Job) -> None:
        """A command attempt, from start to its outcome."""
        try:
            result, error = await self._attempt_command(job)
        except Exception as exc:
            # A bug of ours must fail this job, not the pool and every other job.
            log.exception("job %s: internal error", job.spec.id)
            result, error = None, _internal_error(exc)
        finally:
            self._wakeup.unpark_all()
        self._after_attempt(job, result, error)

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

    async def _attempt_command(self, job: _Job) -> tuple[Any, JobError | None]:
        """Run a command attempt under the job's timeout and cancel scope."""
        assert job.task.command is not None
        argv = render_argv(
            job.task.command,
            check_args(job.task, job.spec.args),
            options_allowed=job.task.options_allowed,
        )
        started = self._mark_started(job)
        error: JobError | None = None
        try:
            with trio.CancelScope() as job.scope:
                if job.cancel_requested:
                    job.scope.cancel()
                with trio.move_on_after(job.timeout_s) as timeout_scope:
                    try:
                        returncode = await run_command(
                            argv,
                            on_line=lambda stream, line: self._emit_log(job, stream, line),
                            max_line_bytes=self.config.max_log_line_bytes,
                            kill_grace_s=self.config.kill_grace_s,
                        )
                    except OSError as exc:
                        error = JobError("SpawnError", str(exc), kind="crash")
                    else:
                        if returncode != 0:
                            exit_info = describe_exit(returncode)
                            message = str(exit_info.pop("message"))
                            error = JobError(
                                "CommandFailed", message, kind="exit", details=exit_info
                            )
        finally:
            job.scope = None
            self._commands_running -= 1
        stopped = self._mark_ended(job, started, timed_out=timeout_scope.cancelled_caught)
        return None, stopped or error

    def _assign(self, job: _Job, worker: Worker) -> bool:
        """Hand ``job`` to ``worker`` (synchronously: assignment order is run order). False if
        the worker turned out to be gone: the job went back to the queue."""
        worker.assigned += 1
        reused = worker.jobs_done + len(worker.pending) > 0

        def on_start() -> float:
            # Called the moment the worker begins this job, so that "running" events come in
            # the order jobs really start, and the timeout counts from then.
            self._stats.python_attempt(reused=reused)
            job.attempt_started = self._mark_started(job)
            job.scope = worker.watch
            return job.attempt_started + job.timeout_s

        attempt = worker.assign(
            job.spec.id,
            job.task.target or "",
            job.spec.args,
            expected_s=self._mean_run_s.get(job.task.name, math.inf),
            on_frame=lambda message: self._on_frame(job, message),
            on_start=on_start,
            on_end=lambda attempt: self._python_ended(job, worker, attempt),
        )
        if attempt is None:
            worker.assigned -= 1
            self._crew.settle(worker)
            self._requeue(job)
            return False
        job.attempt, job.worker = attempt, worker
        return True

    def _requeue(self, job: _Job) -> None:
        self._release_slot(job)
        job.where = "queue"
        now = trio.current_time()
        self._queue.push(job.spec.id, job, job.priority, now, group=job.task.name, force=True)
        self._wakeup.unpark_all()

    def _python_ended(self, job: _Job, worker: Worker, attempt: Attempt) -> None:
        """A Python attempt is over (see :class:`Attempt` for how): settle its worker and
        decide the job's fate. Synchronous, called from the worker's reader (or by cancel())."""
        if self._closing:
            return  # shutdown: the job is left unfinished, for the pool's exit to interrupt
        job.scope = job.attempt = job.worker = None
        worker.assigned -= 1
        # After a done frame the reader dispatches right away; otherwise wake the dispatcher.
        self._crew.settle(worker, wake=False)
        if attempt.done is None:
            self._wakeup.unpark_all()
        if not attempt.is_started:
            if job.cancel_requested:
                self._finish(job, JobInput.CANCEL, error=lifecycle.cancelled_error())
            else:  # sent to a worker that died before starting it: not an attempt, run it again
                self._requeue(job)
            return
        try:
            result, error = self._python_outcome(job, attempt)
        except Exception as exc:
            log.exception("job %s: internal error", job.spec.id)
            result, error = None, _internal_error(exc)
        self._after_attempt(job, result, error)

    def _python_outcome(self, job: _Job, attempt: Attempt) -> tuple[Any, JobError | None]:
        stopped = self._mark_ended(job, job.attempt_started, timed_out=attempt.interrupted)
        if attempt.interrupted:
            return None, stopped
        if attempt.crash is not None:
            self._stats.jobs["crashed"] += 1
            info = dict(attempt.crash.info)
            message = str(info.pop("message", attempt.crash))
            return None, JobError("WorkerCrashed", message, kind="crash", details=info)
        done = attempt.done or {}
        if done.get("ok"):
            return done.get("result"), None
        for line in str(done.get("traceback", "")).splitlines():
            self._emit_log(job, "task", line)
        return None, JobError.from_json(
            done.get("error") or {"type": "Error", "message": "task failed"}
        )

    async def _interrupted(self, worker: Worker, head: Attempt | None) -> None:
        """A worker's watch fired: its running job timed out or was cancelled. Its state is
        unknown, so it is stopped (shielded, ``kill_grace_s``) before the job ends."""
        job = self._jobs.get(head.job_id) if head is not None else None
        if self._closing:
            reason = "shutdown"
        elif job is not None and job.cancel_requested:
            reason = "cancelled"
        else:
            reason = "timeout"
        await self._crew.retire(worker, reason, grace_s=self.config.kill_grace_s)

    def _on_frame(self, job: _Job, message: dict[str, Any]) -> None:
        kind = message.get("ev")
        if kind == "progress":
            try:
                fraction = float(message.get("fraction", 0.0))
            except (TypeError, ValueError):
                return  # not a number: dropped, as the journal would refuse it
            self._emit(job.spec.id, ProgressEvent(fraction, str(message.get("message", ""))))
        elif kind == "log":
            self._emit_log(job, "task", str(message.get("line", "")))

    def _after_attempt(self, job: _Job, result: Any, error: JobError | None) -> None:
        self._release_slot(job)
        job_input = lifecycle.after_attempt(
            error=error,
            attempts=job.attempts,
            max_retries=job.max_retries,
            cancel_requested=job.cancel_requested,
        )
        if job_input is not JobInput.RETRY:
            self._finish(job, job_input, result=result, error=error)
            return
        self._stats.jobs["retried"] += 1
        delay = backoff_delay_s(
            job.attempts,
            base_s=self.config.retry_backoff_s,
            cap_s=self.config.retry_backoff_max_s,
        )
        job.where = "backoff"
        self._emit_state(job, JobInput.RETRY, error=error, retry_in_s=delay)
        assert self._nursery is not None
        self._nursery.start_soon(self._requeue_after, job, delay)

    async def _requeue_after(self, job: _Job, delay_s: float) -> None:
        with trio.CancelScope() as scope:
            job.scope = scope
            if job.cancel_requested:
                scope.cancel()
            await trio.sleep(delay_s)
        job.scope = None
        if job.cancel_requested:
            self._finish(job, JobInput.CANCEL, error=lifecycle.cancelled_error())
            return
        self._requeue(job)

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
