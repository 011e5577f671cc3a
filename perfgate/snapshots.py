"""The statistics components hand the monitor: frozen, typed snapshots.

The Prometheus collector (:mod:`perfgate.monitor.metrics`) reads them by attribute, so a
renamed or removed field fails the type check instead of silently dropping a series; a test
checks that every field is exported (or deliberately listed as not). ``/v1/stats`` serves them
as JSON through :func:`attrs.asdict`, with the keys the fields are named after.

Pure data: no component is imported here, so any of them (and the pool's child processes)
can import this module cheaply.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class PoolJobCounts:
    """Job attempts the pool saw, since it started."""

    submitted: int
    rejected: int
    completed: int
    failed: int
    retried: int
    cancelled: int
    timed_out: int
    crashed: int
    spawn_failures: int


@attrs.frozen
class RunTimes:
    """Run time of the last attempts, in milliseconds."""

    mean: float
    p99: float


@attrs.frozen
class WorkerCounts:
    idle: int
    busy: int
    starting: int
    total: int
    min: int
    max: int


@attrs.frozen
class QueueDepth:
    """Queued jobs by priority (:data:`perfgate.priorities.PRIORITIES`), their total and the
    configured ``max_queue``."""

    high: int
    normal: int
    low: int
    total: int
    max: int


@attrs.frozen
class TaskLimitStats:
    """A task with a ``max_concurrency`` or ``rate_per_s``: jobs queued, whether its limit
    holds them back now, jobs running (``None`` without ``max_concurrency``)."""

    waiting: int
    held: bool
    running: int | None
    max_concurrency: int | None
    rate_per_s: float | None


@attrs.frozen
class PoolSnapshot:
    jobs: PoolJobCounts
    reuse_rate: float
    run_time_ms: RunTimes
    #: Worker restarts by reason (``crash``, ``timeout``...): a label, not a field.
    worker_restarts: dict[str, int]
    workers_started: int
    workers_retired_idle: int
    workers: WorkerCounts
    queue: QueueDepth
    running: int
    accepting: bool
    #: Per limited task (configured, so bounded).
    limited: dict[str, TaskLimitStats]


@attrs.frozen
class MemoryTierStats:
    """The result cache's L1 (an in-process LRU)."""

    hits: int
    misses: int
    evictions: int
    expirations: int
    rejected: int
    bytes: int
    entries: int
    max_bytes: int


@attrs.frozen
class DiskTierStats:
    """The result cache's L2 (diskcache)."""

    hits: int
    misses: int
    evictions: int
    errors: int
    rejected: int
    bytes: int
    entries: int
    max_bytes: int


@attrs.frozen
class CacheSnapshot:
    """Per tier; ``None`` for a disabled tier."""

    l1: MemoryTierStats | None
    l2: DiskTierStats | None


@attrs.frozen
class JobsSnapshot:
    """The job service: pool events waiting to be applied, progress events dropped under load,
    long-poll waiters, jobs recovered at start, submits waiting for queue room, delayed jobs
    armed."""

    events_pending: int
    progress_dropped: int
    waiters: int
    recovered: int
    overflow: int
    scheduled: int


@attrs.frozen
class JournalSnapshot:
    """The job journal's writer. ``write_queue``, ``batches`` and ``ops`` are the SQLite
    writer's (``None`` with Redis, whose journal writes as it is called); ``events_lost``
    counts pool events that could not be recorded; ``recent_jobs`` is how many job records the
    SQLite journal serves from memory (``None`` with Redis, which always reads Redis)."""

    events_lost: int
    write_queue: int | None = None
    batches: int | None = None
    ops: int | None = None
    recent_jobs: int | None = None


@attrs.frozen
class EdgeSnapshot:
    """The HTTP edge's counters since start."""

    rate_limited: int
    not_modified: int
    compressed: int
