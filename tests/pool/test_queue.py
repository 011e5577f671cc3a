"""The pool's priority queue: priority, then FIFO, with aging so low never starves."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfgate.pool.queue import PriorityQueue


def test_higher_priority_first_then_fifo() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=10, aging_s=100)
    for key, prio in [("l1", "low"), ("n1", "normal"), ("h1", "high"), ("n2", "normal")]:
        assert queue.push(key, key, prio, now=0.0)
    assert [queue.pop(now=0.0) for _ in range(5)] == ["h1", "n1", "n2", "l1", None]


def test_low_does_not_starve_under_a_steady_stream_of_high() -> None:
    aging_s = 1.0
    queue: PriorityQueue[str] = PriorityQueue(max_len=100, aging_s=aging_s)
    queue.push("low", "low", "low", now=0.0)
    now = 0.0
    popped_at = None
    # Every 0.1 s a new high job arrives and one job is taken.
    for step in range(1000):
        now = step * 0.1
        queue.push(f"h{step}", f"h{step}", "high", now=now)
        if queue.pop(now=now) == "low":
            popped_at = now
            break
    assert popped_at is not None
    assert popped_at <= 2 * aging_s + 0.1 + 1e-9


def test_full_queue_refuses_but_force_admits_a_retry() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=2, aging_s=1)
    assert queue.push("a", "a", "normal", now=0)
    assert queue.push("b", "b", "normal", now=0)
    assert not queue.push("c", "c", "high", now=0)
    assert len(queue) == 2
    assert queue.push("r", "r", "normal", now=0, force=True)
    assert queue.depth() == {"high": 0, "normal": 3, "low": 0}


def test_remove_by_key() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=5, aging_s=1)
    queue.push("a", "A", "low", now=0)
    queue.push("b", "B", "low", now=0)
    assert queue.remove("a") == "A"
    assert queue.remove("a") is None
    assert list(queue) == ["B"]
    assert len(queue) == 1


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["high", "normal", "low"]), st.floats(0, 50))))
def test_pop_returns_every_item_exactly_once(items: list[tuple[str, float]]) -> None:
    queue: PriorityQueue[int] = PriorityQueue(max_len=1000, aging_s=3)
    now = 0.0
    for index, (prio, gap) in enumerate(items):
        now += gap
        queue.push(str(index), index, prio, now=now)
    out = []
    while (item := queue.pop(now=now)) is not None:
        out.append(item)
    assert sorted(out) == list(range(len(items)))


def test_unknown_priority_is_refused() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=5, aging_s=1)
    with pytest.raises(ValueError, match="unknown priority 'urgent'"):
        queue.push("a", "a", "urgent", now=0)


def test_queue_bounds_are_checked() -> None:
    assert PriorityQueue(max_len=1, aging_s=0.001).max_len == 1  # the smallest allowed
    with pytest.raises(ValueError, match=r"^max_len must be >= 1$"):
        PriorityQueue(max_len=0, aging_s=1)
    with pytest.raises(ValueError, match=r"^aging_s must be > 0$"):
        PriorityQueue(max_len=1, aging_s=0)


def test_effective_rank_ages_by_waiting_time_over_aging_s() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=5, aging_s=4)
    assert queue.effective_rank("low", enqueued_at=10, now=12) == 1.5
    assert queue.effective_rank("high", enqueued_at=10, now=9) == 0.0  # no negative wait


def test_a_tie_goes_to_the_higher_priority() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=5, aging_s=1)
    queue.push("n", "n", "normal", now=0.0)
    queue.push("h", "h", "high", now=1.0)
    # At t=1 both heads rank 0: the normal one aged by exactly one priority level.
    assert queue.peek(now=1.0) == "h"
    assert queue.pop(now=1.0) == "h"


def test_peek_shows_what_pop_takes_and_leaves_it() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=5, aging_s=100)
    assert queue.peek(now=0) is None
    for key, prio in [("l", "low"), ("n", "normal"), ("n2", "normal")]:
        queue.push(key, key, prio, now=0)
    assert queue.peek(now=0) == "n"
    assert len(queue) == 3
    assert queue.remove("l") == "l"
    assert len(queue) == 2
    assert queue.pop(now=0) == "n"
    assert len(queue) == 1
    assert queue.peek(now=0) == queue.pop(now=0) == "n2"
    assert len(queue) == 0
