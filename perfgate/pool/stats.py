"""Pool counters and run-time statistics. Pure: the pool feeds numbers, :meth:`snapshot` reads."""

from __future__ import annotations

import math
from collections import Counter, deque

import attrs

from perfgate.snapshots import (
    PoolJobCounts,
    PoolSnapshot,
    QueueDepth,
    RunTimes,
    TaskLimitStats,
    WorkerCounts,
)

RESTART_REASONS = ("crash", "timeout", "cancelled", "max_jobs", "rss", "protocol")


class PoolStats:
    """Counters since the pool started, and the run times of the last ``window`` attempts."""

    def __init__(self, window: int = 1024) -> None:
        self.jobs: Counter[str] = Counter()
        self.restarts: Counter[str] = Counter({reason: 0 for reason in RESTART_REASONS})
        self.workers_started = 0
        self.workers_retired_idle = 0
        self.python_attempts = 0
        self.reused_attempts = 0
        self._run_times_s: deque[float] = deque(maxlen=window)

    def attempt_finished(self, duration_s: float) -> None:
        self._run_times_s.append(duration_s)

    def python_attempt(self, *, reused: bool) -> None:
        self.python_attempts += 1
        self.reused_attempts += int(reused)

    @property
    def mean_run_s(self) -> float:
        times = self._run_times_s
        return sum(times) / len(times) if times else 0.0

    def run_time_ms(self) -> RunTimes:
        times = sorted(self._run_times_s)
        if not times:
            return RunTimes(mean=0.0, p99=0.0)
        # Nearest-rank percentile: the smallest value with at least 99 % of samples at or below.
        p99 = times[max(0, math.ceil(0.99 * len(times)) - 1)]
        return RunTimes(mean=1000.0 * sum(times) / len(times), p99=1000.0 * p99)

    def snapshot(
        self,
        *,
        workers: WorkerCounts,
        queue: QueueDepth,
        running: int,
        accepting: bool,
        limited: dict[str, TaskLimitStats],
    ) -> PoolSnapshot:
        """These counters with the pool's present state (``workers`` ... ``limited``)."""
        reuse = self.reused_attempts / self.python_attempts if self.python_attempts else 0.0
        counts = {name: self.jobs[name] for name in attrs.fields_dict(PoolJobCounts)}
        return PoolSnapshot(
            jobs=PoolJobCounts(**counts),
            reuse_rate=reuse,
            run_time_ms=self.run_time_ms(),
            worker_restarts=dict(self.restarts),
            workers_started=self.workers_started,
            workers_retired_idle=self.workers_retired_idle,
            workers=workers,
            queue=queue,
            running=running,
            accepting=accepting,
            limited=limited,
        )
