"""Per-task limits: ``max_concurrency`` (jobs of the task running at once) and ``rate_per_s``
(jobs of the task started per second, a token bucket holding one second's worth, at least
one). Pure: time is an argument.

The pool asks :meth:`TaskLimits.blocked` before each dispatch and leaves the blocked tasks'
jobs in the queue (:class:`~perfgate.pool.queue.PriorityQueue` skips their lanes, so other
tasks' jobs go ahead of them; within a task, priority order and aging hold). A job takes its
slot and token when it is dispatched and gives the slot back when its attempt ends (a job
waiting out a retry back-off holds no slot). Nothing fails for being over a limit: it waits.
"""

from __future__ import annotations

from collections.abc import Mapping

from perfgate.config import TaskConfig
from perfgate.ratelimit import TokenBucket


class TaskLimits:
    def __init__(self, tasks: Mapping[str, TaskConfig]) -> None:
        self._max = {n: t.max_concurrency for n, t in tasks.items() if t.max_concurrency}
        self._buckets = {
            n: TokenBucket(t.rate_per_s, burst=max(1.0, t.rate_per_s))
            for n, t in tasks.items()
            if t.rate_per_s
        }
        self.limited = frozenset(self._max) | frozenset(self._buckets)
        self.running: dict[str, int] = dict.fromkeys(self._max, 0)

    def blocked(self, now: float) -> frozenset[str]:
        """The tasks that may not start a job at ``now``."""
        if not self.limited:
            return frozenset()
        at_cap = {n for n, cap in self._max.items() if self.running[n] >= cap}
        no_token = {n for n, b in self._buckets.items() if b.wait_s(now) > 0}
        return frozenset(at_cap | no_token)

    def next_token_in(self, now: float, tasks: frozenset[str]) -> float | None:
        """Seconds until the first of ``tasks`` that waits only for a token gets one."""
        waits = [
            self._buckets[n].wait_s(now)
            for n in tasks
            if n in self._buckets and self.running.get(n, 0) < self._max.get(n, 1 << 62)
        ]
        return min(waits) if waits else None

    def acquire(self, task: str, now: float) -> bool:
        """A job of ``task`` starts: take its slot and token. True if the task is limited
        (the caller releases the slot when the attempt ends)."""
        if task not in self.limited:
            return False
        if task in self._max:
            self.running[task] += 1
        bucket = self._buckets.get(task)
        if bucket is not None:
            bucket.take(now)
        return True

    def release(self, task: str) -> None:
        if task in self._max:
            self.running[task] = max(0, self.running[task] - 1)
