"""Long-polls: requests waiting for their job to finish.

A waiter is registered *before* the first read of the journal, so that a job that finishes
while that read is in flight still wakes it (no lost wake-up). A long-poll woken by its job's
final state answers with the record that state was committed as, without reading the journal
again.

With a shared queue (Redis) a job may finish on another instance, so a long-poll cannot rely
on this process's own events. It listens on the job's channel instead (:class:`FinalWatch`,
subscribed before its first read of the job, so a final state published after that read
reaches it, and one published before is in the read) and is woken by the ``state`` event of
a final state; its answer is then one read. A slow re-read (:data:`WATCHED_POLL_S`) stays as a safety net,
and is what a long-poll falls back to, every ``wait_poll_s``, when it cannot subscribe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Final

import attrs
import trio

from perfgate.broker import Message
from perfgate.jobs.lifecycle import is_final_state_event
from perfgate.store import JobRecord

#: The re-read of a long-poll that listens on its job's channel: only a safety net.
WATCHED_POLL_S: Final = 1.0


@attrs.define
class Waiter:
    """The long-polls of one job."""

    event: trio.Event = attrs.field(factory=trio.Event)
    count: int = 0
    #: The job's final record, set with ``event`` when it finished here: no read needed.
    record: JobRecord | None = None

    async def until_finished(
        self, poll_s: float | None, finished: Callable[[], Awaitable[bool]]
    ) -> None:
        """Until the job finished here or, when it may finish in another process
        (``poll_s`` is not ``None``), until a re-read every ``poll_s`` finds it finished."""
        if poll_s is None:
            await self.event.wait()
            return
        while not self.event.is_set():
            with trio.move_on_after(poll_s):
                await self.event.wait()
            if not self.event.is_set() and await finished():
                return


@attrs.define(eq=False)
class FinalWatch:
    """A sink on a job's channel that wakes ``waiter`` on the job's final ``state`` event
    (from any instance). Never blocks, never raises."""

    waiter: Waiter

    def deliver(self, message: Message) -> None:
        if is_final_event(message):
            self.waiter.event.set()


def is_final_event(message: Message) -> bool:
    """Whether ``message`` is a job channel's ``state`` event of a final state."""
    try:
        data = message.data
    except ValueError:
        return False
    return is_final_state_event(data)


class LongPolls:
    """The waiters, by job; a job's entry lives as long as someone waits for it."""

    def __init__(self) -> None:
        self._by_job: dict[str, Waiter] = {}

    def __len__(self) -> int:
        """How many long-polls are waiting."""
        return sum(waiter.count for waiter in self._by_job.values())

    @contextmanager
    def waiting(self, job_id: str) -> Iterator[Waiter]:
        """Register a long-poll on ``job_id`` for the block's duration."""
        waiter = self._by_job.setdefault(job_id, Waiter())
        waiter.count += 1
        try:
            yield waiter
        finally:
            waiter.count -= 1
            if waiter.count == 0 and self._by_job.get(job_id) is waiter:
                del self._by_job[job_id]

    def finished(self, record: JobRecord) -> None:
        """Wake the long-polls on ``record``'s job with its final record."""
        waiter = self._by_job.get(record.id)
        if waiter is not None:
            waiter.record = record
            waiter.event.set()

    def wake_all(self) -> None:
        """Wake every long-poll (they answer with their job as it is): the drain."""
        for waiter in self._by_job.values():
            waiter.event.set()
