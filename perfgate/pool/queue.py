"""The job queue: three FIFO lanes (high, normal, low) with aging. Pure: time is passed in.

Each lane is FIFO, so its head is its oldest entry. :meth:`PriorityQueue.pop` compares only the
three heads by an *effective rank*: the lane's rank (high 0, normal 1, low 2) minus the time the
head has waited divided by ``aging_s``. A low job that has waited ``2 * aging_s`` outranks a
fresh high job, so under a steady stream of high jobs a low job still runs within about
``2 * aging_s`` plus one dispatch: nothing starves. Ties go to the higher priority.

The queue is bounded by ``max_len``: :meth:`push` refuses (returns False) rather than grow.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

PRIORITIES: tuple[str, ...] = ("high", "normal", "low")
_RANK = {name: rank for rank, name in enumerate(PRIORITIES)}

T = TypeVar("T")


class PriorityQueue(Generic[T]):
    """Bounded priority queue with aging; items are identified by a string key for removal."""

    def __init__(self, *, max_len: int, aging_s: float) -> None:
        if max_len < 1:
            raise ValueError("max_len must be >= 1")
        if aging_s <= 0:
            raise ValueError("aging_s must be > 0")
        self.max_len = max_len
        self.aging_s = aging_s
        self._lanes: dict[str, deque[tuple[float, str, T]]] = {p: deque() for p in PRIORITIES}
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def depth(self) -> dict[str, int]:
        """Number of queued items per priority."""
        return {name: len(lane) for name, lane in self._lanes.items()}

    def __iter__(self) -> Iterator[T]:
        for lane in self._lanes.values():
            for _, _, item in lane:
                yield item

    def push(self, key: str, item: T, priority: str, now: float, *, force: bool = False) -> bool:
        """Append ``item``; False (and nothing queued) if full, unless ``force``.

        ``force`` is for re-queueing a job that was already admitted (a retry): the bound is on
        admissions, so a retry never bounces a job that the queue accepted earlier.
        """
        if priority not in _RANK:
            raise ValueError(f"unknown priority {priority!r}")
        if self._len >= self.max_len and not force:
            return False
        self._lanes[priority].append((now, key, item))
        self._len += 1
        return True

    def effective_rank(self, priority: str, enqueued_at: float, now: float) -> float:
        return _RANK[priority] - max(0.0, now - enqueued_at) / self.aging_s

    def _best_lane(self, now: float) -> deque[tuple[float, str, T]] | None:
        best_lane: deque[tuple[float, str, T]] | None = None
        best_rank = 0.0
        for name in PRIORITIES:
            lane = self._lanes[name]
            if not lane:
                continue
            rank = self.effective_rank(name, lane[0][0], now)
            if best_lane is None or rank < best_rank:
                best_lane, best_rank = lane, rank
        return best_lane

    def peek(self, now: float) -> T | None:
        """The item :meth:`pop` would return at ``now``, left in place; None if empty."""
        lane = self._best_lane(now)
        return None if lane is None else lane[0][2]

    def pop(self, now: float) -> T | None:
        """Remove and return the item with the best effective rank, or None if empty."""
        lane = self._best_lane(now)
        if lane is None:
            return None
        self._len -= 1
        return lane.popleft()[2]

    def remove(self, key: str) -> T | None:
        """Remove the item queued under ``key``; None if it is not queued. O(n), for cancels."""
        for lane in self._lanes.values():
            for index, (_, item_key, item) in enumerate(lane):
                if item_key == key:
                    del lane[index]
                    self._len -= 1
                    return item
        return None
