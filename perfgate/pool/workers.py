"""The pool's warm workers: start, lend, recycle, replace, idle out, stop.

Every task here (worker readers, starts, stops, the idle reaper) runs in the set's own nursery,
opened by :meth:`WorkerSet.run`, which the pool starts in its nursery; leaving it stops every
worker, so nothing here outlives the pool. Counting is synchronous (a worker leaves :attr:`all` the moment
it is retired, before its process is stopped), so the ``min_workers``/``max_workers`` checks
are exact; the only overshoot is a replacement racing an on-demand start, which
:meth:`settle` trims as soon as the extra worker is free.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from perfgate.config import PoolConfig
from perfgate.pool.stats import PoolStats
from perfgate.pool.worker import Attempt, Worker, WorkerCrashed

log = logging.getLogger("perfgate.pool")

_IDLE_CHECK_MAX_S = 1.0
_START_BACKOFF_S = 1.0
"""After a worker fails to start, wait this long before trying again (no fork storm)."""
_MB = 1024 * 1024


class WorkerSet:
    def __init__(
        self,
        config: PoolConfig,
        stats: PoolStats,
        wakeup: trio.lowlevel.ParkingLot,
        *,
        on_interrupt: Callable[[Worker, Attempt | None], Awaitable[None]],
        after_frames: Callable[[], None],
    ):
        self.config = config
        self.stats = stats
        self.wakeup = wakeup  # unparked whenever a worker may have become available
        self.on_interrupt = on_interrupt  # for every reader; see Worker.read_frames
        self.after_frames = after_frames
        self.all: set[Worker] = set()
        self.idle: list[Worker] = []  # a stack: the most recently used on top
        self.starting = 0
        self.closing = False
        self.nursery: trio.Nursery | None = None
        self._no_start_before = 0.0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start ``min_workers`` workers and the idle reaper in the set's own nursery; report
        started once the workers are warm. When cancelled, stop every worker (shielded: SIGTERM,
        SIGKILL after ``kill_grace_s``, reaped) before returning."""
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                async with trio.open_nursery() as warmup:
                    for _ in range(self.config.min_workers):
                        warmup.start_soon(self.add_idle)
                nursery.start_soon(self.reap_idle)
                task_status.started()
        finally:
            self.nursery = None
            with trio.CancelScope(shield=True):
                await self.stop_all()

    @property
    def can_start(self) -> bool:
        return len(self.all) + self.starting < self.config.max_workers

    def pick(self, prefetch_ok: Callable[[Worker], bool] | None = None) -> Worker | None:
        """An idle worker (the most recently used), else, if ``prefetch_ok`` is given, the
        busy worker with the fewest jobs that ``prefetch_ok`` accepts (and that will not be
        recycled before reaching it). The caller must assign it a job at once."""
        if self.idle:
            return self.idle.pop()
        if prefetch_ok is None:
            return None
        best: Worker | None = None
        for worker in self.all:
            if (
                worker.assigned
                and (best is None or worker.assigned < best.assigned)
                and worker.exit_info is None
                and not self.due_for_recycling(worker, extra_jobs=worker.assigned)
                and prefetch_ok(worker)
            ):
                best = worker
        return best

    def grow(self) -> None:
        """Start one more worker in the background if below ``max_workers`` (and not backing
        off after a failed start); it joins the idle stack when ready."""
        if not self.can_start or self.nursery is None or self.closing:
            return
        if trio.current_time() < self._no_start_before:
            return
        self.starting += 1
        self.nursery.start_soon(self._add_reserved)

    async def launch(self) -> Worker | None:
        """Start a worker for which :attr:`starting` was already counted; None if it failed."""
        try:
            worker = await Worker.start()
        except (OSError, WorkerCrashed) as exc:
            log.error("could not start a worker: %s", exc)
            self.stats.jobs["spawn_failures"] += 1
            self._no_start_before = trio.current_time() + _START_BACKOFF_S
            return None
        finally:
            self.starting -= 1
        self.all.add(worker)
        self.stats.workers_started += 1
        assert self.nursery is not None
        self.nursery.start_soon(self._read, worker)
        return worker

    async def _read(self, worker: Worker) -> None:
        await worker.read_frames(
            self._exited, on_interrupt=self.on_interrupt, after_frames=self.after_frames
        )

    async def add_idle(self) -> None:
        self.starting += 1
        await self._add_reserved()

    async def _add_reserved(self) -> None:
        worker = await self.launch()
        if worker is not None:
            self.settle(worker)
        self.wakeup.unpark_all()

    def due_for_recycling(self, worker: Worker, extra_jobs: int = 0) -> bool:
        return (
            worker.jobs_done + extra_jobs >= self.config.max_jobs_per_worker
            or worker.rss_bytes > self.config.max_worker_rss_mb * _MB
        )

    def settle(self, worker: Worker, *, wake: bool = True) -> None:
        """A worker with nothing assigned goes back to the idle stack, or is recycled: checked
        between jobs, never mid-job. ``wake=False``: the caller dispatches itself."""
        if worker not in self.all or worker.assigned or worker.exit_info is not None:
            return
        if len(self.all) > self.config.max_workers:
            self.retire_soon(worker, "idle")
        elif worker.jobs_done >= self.config.max_jobs_per_worker:
            self.retire_soon(worker, "max_jobs")
        elif worker.rss_bytes > self.config.max_worker_rss_mb * _MB:
            self.retire_soon(worker, "rss")
        else:
            worker.idle_since = trio.current_time()
            self.idle.append(worker)
            if wake:
                self.wakeup.unpark_all()

    def _exited(self, worker: Worker) -> None:
        """Called by a worker's reader task when it ends."""
        if worker.exit_info is None:
            return  # the reader was cancelled (shutdown): stop_all stops the process
        if worker in self.all:  # nobody stopped it: it crashed (mid-job or idle)
            self.forget(worker, "crash")
            self._replace_if_below_minimum()
        self.wakeup.unpark_all()

    def _replace_if_below_minimum(self) -> None:
        if (
            not self.closing
            and self.nursery is not None
            and len(self.all) + self.starting < self.config.min_workers
        ):
            self.nursery.start_soon(self.add_idle)

    def retire_soon(self, worker: Worker, reason: str) -> None:
        """Retire a free worker gracefully in the background."""
        self.forget(worker, reason)
        assert self.nursery is not None
        self.nursery.start_soon(self.retire, worker, reason, self.config.kill_grace_s)

    async def retire(self, worker: Worker, reason: str, grace_s: float) -> None:
        """Stop ``worker`` (shielded) and, if below ``min_workers``, start a replacement."""
        self.forget(worker, reason)
        await worker.stop(grace_s=grace_s)
        if reason != "idle":
            self._replace_if_below_minimum()

    def forget(self, worker: Worker, reason: str) -> None:
        """Take ``worker`` out of the books and count why. Idempotent."""
        if worker not in self.all:
            return
        self.all.discard(worker)
        if worker in self.idle:
            self.idle.remove(worker)
        if reason == "idle":
            self.stats.workers_retired_idle += 1
        elif reason != "shutdown":
            self.stats.restarts[reason] += 1

    async def reap_idle(self) -> None:
        """Forever: stop workers idle for ``idle_timeout_s``, oldest first, down to
        ``min_workers``."""
        check_every_s = min(_IDLE_CHECK_MAX_S, self.config.idle_timeout_s / 4)
        while True:
            await trio.sleep(check_every_s)
            now = trio.current_time()
            # The bottom of the idle stack holds the workers that have been idle longest.
            while (
                self.idle
                and len(self.all) > self.config.min_workers
                and now - self.idle[0].idle_since >= self.config.idle_timeout_s
            ):
                self.retire_soon(self.idle[0], "idle")

    async def stop_all(self) -> None:
        """Stop every worker concurrently (SIGTERM, SIGKILL after ``kill_grace_s``, reaped)."""
        workers = list(self.all)
        self.all.clear()
        self.idle.clear()
        async with trio.open_nursery() as nursery:
            for worker in workers:
                nursery.start_soon(self._stop, worker)

    async def _stop(self, worker: Worker) -> None:
        await worker.stop(grace_s=self.config.kill_grace_s)
