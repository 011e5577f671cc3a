"""The job queue: FIFO lanes per (priority, task) with aging. Pure: time is passed in.

Each lane is FIFO, so its head is its oldest entry. :meth:`PriorityQueue.pop` compares only
the lanes' heads by an *effective rank*: the priority's rank (high 0, normal 1, low 2) minus
the time the head has waited divided by ``aging_s``. A low job that has waited
``2 * aging_s`` outranks a fresh high job, so under a steady stream of high jobs a low job
still runs within about ``2 * aging_s`` plus one dispatch: nothing starves. Ties go to the
higher priority, then to the earlier push.

Why a lane per task (``group``) and not one per priority: a task held back by its own limit
(``max_concurrency``, ``rate_per_s``) is left out of the comparison (``blocked``), and the
best job of every other task is still found among the heads, so a limited task's waiting jobs
never block other tasks' jobs behind them. With nothing blocked the order is exactly that of
one FIFO per priority (the oldest head of a priority is its oldest job).

The queue is bounded by ``max_len``: :meth:`push` refuses (returns False) rather than grow.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Container, Iterator
from typing import Generic, TypeVar

from perfgate.priorities import PRIORITIES

_RANK = {name: rank for rank, name in enumerate(PRIORITIES)}
_NOTHING: frozenset[str] = frozenset()

T = TypeVar("T")
_Entry = tuple[float, int, str, T]  # (enqueued at, push order, key, item)


class PriorityQueue(Generic[T]):
    """Bounded priority queue with aging; items are identified by a string key for removal
    and belong to a ``group`` (a task) that :meth:`peek` and :meth:`pop` may skip."""

    def __init__(self, *, max_len: int, aging_s: float) -> None:
        if max_len < 1:
            raise ValueError("max_len must be >= 1")
        if aging_s <= 0:
            raise ValueError("aging_s must be > 0")
        self.max_len = max_len
        self.aging_s = aging_s
        self._lanes: dict[tuple[str, str], deque[_Entry[T]]] = {}
        self._len = 0
        self._order = itertools.count()

    def __len__(self) -> int:
        return self._len

    def depth(self) -> dict[str, int]:
        """Number of queued items per priority."""
        out = dict.fromkeys(PRIORITIES, 0)
        for (priority, _), lane in self._lanes.items():
            out[priority] += len(lane)
        return out

    def waiting(self, groups: Container[str]) -> dict[str, int]:
        """Number of queued items of each of ``groups`` that has any."""
        out: dict[str, int] = {}
        for (_, group), lane in self._lanes.items():
            if lane and group in groups:
                out[group] = out.get(group, 0) + len(lane)
        return out

    def __iter__(self) -> Iterator[T]:
        for lane in self._lanes.values():
            for entry in lane:
                yield entry[3]

    def push(
        self, key: str, item: T, priority: str, now: float, *, group: str = "", force: bool = False
    ) -> bool:
        """Append ``item``; False (and nothing queued) if full, unless ``force``.

        ``force`` is for re-queueing a job that was already admitted (a retry): the bound is on
        admissions, so a retry never bounces a job that the queue accepted earlier.
        """
        if priority not in _RANK:
            raise ValueError(f"unknown priority {priority!r}")
        if self._len >= self.max_len and not force:
            return False
        lane = self._lanes.setdefault((priority, group), deque())
        lane.append((now, next(self._order), key, item))
        self._len += 1
        return True

    def effective_rank(self, priority: str, enqueued_at: float, now: float) -> float:
        return _RANK[priority] - max(0.0, now - enqueued_at) / self.aging_s

    def _best_lane(self, now: float, blocked: Container[str]) -> deque[_Entry[T]] | None:
        best_lane: deque[_Entry[T]] | None = None
        best: tuple[float, int, int] | None = None
        for (priority, group), lane in self._lanes.items():
            if not lane or group in blocked:
                continue
            enqueued_at, order, _, _ = lane[0]
            rank = (self.effective_rank(priority, enqueued_at, now), _RANK[priority], order)
            if best is None or rank < best:
                best_lane, best = lane, rank
        return best_lane

    def peek(self, now: float, blocked: Container[str] = _NOTHING) -> T | None:
        """The item :meth:`pop` would return at ``now``, left in place; None if empty (or
        every queued item's group is ``blocked``)."""
        lane = self._best_lane(now, blocked)
        return None if lane is None else lane[0][3]

    def pop(self, now: float, blocked: Container[str] = _NOTHING) -> T | None:
        """Remove and return the item with the best effective rank whose group is not
        ``blocked``, or None if there is none."""
        lane = self._best_lane(now, blocked)
        if lane is None:
            return None
        self._len -= 1
        return lane.popleft()[3]

    def remove(self, key: str) -> T | None:
        """Remove the item queued under ``key``; None if it is not queued. O(n), for cancels."""
        for lane in self._lanes.values():
            for index, entry in enumerate(lane):
                if entry[2] == key:
                    del lane[index]
                    self._len -= 1
                    return entry[3]
        return None
