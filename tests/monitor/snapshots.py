"""Stats snapshots with every field set (non-zero, distinct where it matters), for the
monitor's tests: the figures a component would report."""

from __future__ import annotations

from perfgate.snapshots import (
    CacheSnapshot,
    DiskTierStats,
    EdgeSnapshot,
    JobsSnapshot,
    JournalSnapshot,
    MemoryTierStats,
    PoolJobCounts,
    PoolSnapshot,
    QueueDepth,
    RunTimes,
    TaskLimitStats,
    WorkerCounts,
)


def pool_snapshot() -> PoolSnapshot:
    return PoolSnapshot(
        jobs=PoolJobCounts(
            submitted=50,
            rejected=1,
            completed=40,
            failed=2,
            retried=3,
            cancelled=4,
            timed_out=5,
            crashed=6,
            spawn_failures=7,
        ),
        reuse_rate=0.75,
        run_time_ms=RunTimes(mean=12.0, p99=80.0),
        worker_restarts={"rss": 1, "crash": 2},
        workers_started=9,
        workers_retired_idle=8,
        workers=WorkerCounts(idle=1, busy=3, starting=1, total=4, min=1, max=8),
        queue=QueueDepth(high=2, normal=5, low=1, total=8, max=100),
        running=3,
        accepting=True,
        limited={
            "slow": TaskLimitStats(
                waiting=2, held=True, running=1, max_concurrency=1, rate_per_s=None
            )
        },
    )


def cache_snapshot() -> CacheSnapshot:
    return CacheSnapshot(
        l1=MemoryTierStats(
            hits=90,
            misses=10,
            evictions=1,
            expirations=2,
            rejected=3,
            bytes=2048,
            entries=5,
            max_bytes=4096,
        ),
        l2=DiskTierStats(
            hits=3, misses=4, evictions=5, errors=6, rejected=7, bytes=8, entries=9, max_bytes=10
        ),
    )


def jobs_snapshot() -> JobsSnapshot:
    return JobsSnapshot(
        events_pending=1, progress_dropped=2, waiters=3, recovered=4, overflow=5, scheduled=6
    )


def journal_snapshot() -> JournalSnapshot:
    return JournalSnapshot(events_lost=1, write_queue=2, batches=3, ops=4, recent_jobs=5)


def edge_snapshot() -> EdgeSnapshot:
    return EdgeSnapshot(rate_limited=1, not_modified=2, compressed=3)
