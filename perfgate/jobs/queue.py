"""Where the job service puts accepted jobs: the interface, and the in-process default.

:class:`LocalQueue` hands a job straight to this process's pool (the embedded default).
:class:`perfgate.jobs.redis_queue.RedisJobQueue` is the shared one: the journal's ``create``
has already put the job on a Redis Stream, and whichever instance has room runs it.
"""

from __future__ import annotations

from typing import Protocol

from perfgate.errors import QueueFull
from perfgate.pool import JobSpec, Pool
from perfgate.store import JobRecord


class JobQueue(Protocol):
    #: How often a long-poll re-reads its job, when the job may finish in another process
    #: (whose completion wakes no local waiter); ``None`` when every completion is local.
    wait_poll_s: float | None

    def check_room(self, reserved: int) -> None:
        """Raise :class:`~perfgate.errors.QueueFull` if ``reserved`` more jobs would not fit."""

    def submit(self, spec: JobSpec) -> None:
        """Queue a job the journal has just created (synchronous, never blocks)."""

    def owns_events(self, job_id: str) -> bool:
        """False for a job this process still runs but no longer owns (another instance took
        it over): its pool's events must not be written to the journal."""


class LocalQueue:
    """The in-process queue: the pool's own priority queue."""

    wait_poll_s: float | None = None

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def check_room(self, reserved: int) -> None:
        limit = self.pool.config.max_queue
        if self.pool.queued() + reserved >= limit:
            raise QueueFull(f"the job queue is full ({limit} waiting)", retry_after_s=1.0)

    def submit(self, spec: JobSpec) -> None:
        self.pool.submit(spec)

    def owns_events(self, job_id: str) -> bool:
        return True


def spec_of(record: JobRecord) -> JobSpec:
    """What the pool needs to run a journalled job (recovered, or claimed from a shared queue);
    ``attempts`` carries over, so retries left and the attempt count stay right."""
    return JobSpec(
        id=record.id,
        task=record.task,
        args=record.args,
        priority=record.priority,
        timeout_s=record.timeout_s,
        max_retries=record.max_retries,
        attempts=record.attempts,
    )
