"""The in-process job queue (perfgate.jobs.queue): room is the pool's, counting submits still
on their way; a journalled job becomes the pool's spec with its attempts carried over."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from perfgate.errors import QueueFull
from perfgate.jobs.queue import LocalQueue, spec_of
from perfgate.pool import JobSpec
from perfgate.store import JobRecord


class FakePool:
    def __init__(self, room: int) -> None:
        self.room = room
        self.config = SimpleNamespace(max_queue=10)
        self.submitted: list[JobSpec] = []

    def queue_room(self) -> int:
        return self.room

    def submit(self, spec: JobSpec) -> None:
        self.submitted.append(spec)


def test_room_counts_the_submits_already_reserved() -> None:
    queue = LocalQueue(FakePool(room=2))  # type: ignore[arg-type]
    queue.check_room(0)
    queue.check_room(1)
    with pytest.raises(QueueFull, match=r"\(10 waiting\)") as info:
        queue.check_room(2)
    assert info.value.retry_after_s == 1.0


def test_submit_hands_the_spec_to_the_pool_and_every_event_is_ours() -> None:
    pool = FakePool(room=1)
    queue = LocalQueue(pool)  # type: ignore[arg-type]
    spec = JobSpec(id="j", task="echo", args={})
    queue.submit(spec)
    assert pool.submitted == [spec]
    assert queue.owns_events("anything")
    assert queue.wait_poll_s is None
    assert not queue.moves_due_jobs


def test_spec_of_carries_what_the_pool_needs_attempts_included() -> None:
    record = JobRecord(
        id="j",
        task="echo",
        args={"a": 1},
        priority="high",
        timeout_s=2.5,
        max_retries=3,
        attempts=2,
        tenant="acme",
    )
    assert spec_of(record) == JobSpec(
        id="j",
        task="echo",
        args={"a": 1},
        priority="high",
        timeout_s=2.5,
        max_retries=3,
        attempts=2,
    )
