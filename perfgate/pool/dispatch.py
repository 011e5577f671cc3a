"""The dispatch step: the best queued job goes to a worker, a prefetch slot or a command
task whenever there is room, and nothing overtakes it (see :meth:`_Dispatcher._dispatch_ready`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from perfgate.pool import prefetch
from perfgate.pool.attempts import _Attempts
from perfgate.pool.books import _Job
from perfgate.pool.worker import Worker


class _Dispatcher(_Attempts):
    """The dispatcher task and the synchronous dispatch step (see the module docstring)."""

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
