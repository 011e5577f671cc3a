"""The Prometheus series of each stats snapshot (:mod:`perfgate.snapshots`), read by attribute.

:data:`EXPORTED` names, for every field of every snapshot, the series it feeds, and
:data:`NOT_EXPORTED` the fields deliberately left out and why; a test holds both to the
snapshot classes, so a field added without a series (or a series left without its field) is
noticed. Names follow the Prometheus conventions of :mod:`perfgate.monitor.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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

#: A snapshot class -> {field: the series (family name) it feeds}.
EXPORTED: dict[type, dict[str, str]] = {
    PoolSnapshot: {
        "reuse_rate": "perfgate_pool_worker_reuse_ratio",
        "worker_restarts": "perfgate_pool_worker_restarts",
        "workers_started": "perfgate_pool_workers_started",
        "workers_retired_idle": "perfgate_pool_workers_retired_idle",
        "running": "perfgate_pool_jobs_running",
        "accepting": "perfgate_pool_accepting",
    },
    PoolJobCounts: {
        "submitted": "perfgate_pool_jobs_submitted",
        "rejected": "perfgate_pool_jobs_rejected",
        "completed": "perfgate_pool_jobs",
        "failed": "perfgate_pool_jobs",
        "retried": "perfgate_pool_job_retries",
        "cancelled": "perfgate_pool_jobs_cancelled",
        "timed_out": "perfgate_pool_jobs_timed_out",
        "crashed": "perfgate_pool_jobs_crashed",
        "spawn_failures": "perfgate_pool_spawn_failures",
    },
    WorkerCounts: {
        "idle": "perfgate_pool_workers",
        "busy": "perfgate_pool_workers",
        "starting": "perfgate_pool_workers_starting",
        "total": "perfgate_pool_workers_running",
        "min": "perfgate_pool_workers_min",
        "max": "perfgate_pool_workers_max",
    },
    QueueDepth: {
        "high": "perfgate_pool_queue_depth",
        "normal": "perfgate_pool_queue_depth",
        "low": "perfgate_pool_queue_depth",
        "max": "perfgate_pool_queue_max",
    },
    TaskLimitStats: {
        "waiting": "perfgate_task_jobs_queued",
        "held": "perfgate_task_jobs_held",
        "running": "perfgate_task_jobs_running",
    },
    MemoryTierStats: {
        "hits": "perfgate_cache_hits",
        "misses": "perfgate_cache_misses",
        "evictions": "perfgate_cache_evictions",
        "expirations": "perfgate_cache_expirations",
        "rejected": "perfgate_cache_rejected",
        "bytes": "perfgate_cache_bytes",
        "entries": "perfgate_cache_entries",
        "max_bytes": "perfgate_cache_max_bytes",
    },
    DiskTierStats: {
        "hits": "perfgate_cache_hits",
        "misses": "perfgate_cache_misses",
        "evictions": "perfgate_cache_evictions",
        "errors": "perfgate_cache_errors",
        "rejected": "perfgate_cache_rejected",
        "bytes": "perfgate_cache_bytes",
        "entries": "perfgate_cache_entries",
        "max_bytes": "perfgate_cache_max_bytes",
    },
    JobsSnapshot: {
        "events_pending": "perfgate_jobs_events_pending",
        "progress_dropped": "perfgate_jobs_progress_dropped",
        "waiters": "perfgate_jobs_waiters",
        "recovered": "perfgate_jobs_recovered",
        "overflow": "perfgate_jobs_overflow",
        "scheduled": "perfgate_jobs_scheduled",
    },
    JournalSnapshot: {
        "events_lost": "perfgate_journal_events_lost",
        "write_queue": "perfgate_journal_write_queue",
        "batches": "perfgate_journal_batches",
        "ops": "perfgate_journal_ops",
        "recent_jobs": "perfgate_journal_recent_jobs",
    },
    EdgeSnapshot: {
        "rate_limited": "perfgate_http_rate_limited",
        "not_modified": "perfgate_http_not_modified",
        "compressed": "perfgate_http_compressed",
    },
}

#: (snapshot class, field) -> why it has no series of its own.
NOT_EXPORTED: dict[tuple[type, str], str] = {
    (PoolSnapshot, "jobs"): "a group: its fields are exported",
    (PoolSnapshot, "workers"): "a group: its fields are exported",
    (PoolSnapshot, "queue"): "a group: its fields are exported",
    (PoolSnapshot, "limited"): "a group per task: TaskLimitStats's fields are exported",
    (PoolSnapshot, "run_time_ms"): "precomputed quantiles: perfgate_job_duration_seconds is the histogram",
    (RunTimes, "mean"): "precomputed: perfgate_job_duration_seconds is the histogram",
    (RunTimes, "p99"): "precomputed: perfgate_job_duration_seconds is the histogram",
    (QueueDepth, "total"): "the sum of perfgate_pool_queue_depth",
    (TaskLimitStats, "max_concurrency"): "configuration, not a measurement",
    (TaskLimitStats, "rate_per_s"): "configuration, not a measurement",
    (CacheSnapshot, "l1"): "a group: MemoryTierStats's fields are exported (tier=l1)",
    (CacheSnapshot, "l2"): "a group: DiskTierStats's fields are exported (tier=l2)",
}  # fmt: skip


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def pool_series(stats: PoolSnapshot) -> Iterator[Metric]:
    workers = GaugeMetricFamily("perfgate_pool_workers", "Pool workers by state.", labels=["state"])
    workers.add_metric(["idle"], stats.workers.idle)
    workers.add_metric(["busy"], stats.workers.busy)
    yield workers
    yield _gauge(
        "perfgate_pool_workers_running", "Pool worker processes alive.", stats.workers.total
    )
    yield _gauge("perfgate_pool_workers_starting", "Pool workers starting.", stats.workers.starting)
    yield _gauge(
        "perfgate_pool_workers_min", "Configured minimum of pool workers.", stats.workers.min
    )
    yield _gauge(
        "perfgate_pool_workers_max", "Configured maximum of pool workers.", stats.workers.max
    )
    depth = GaugeMetricFamily(
        "perfgate_pool_queue_depth", "Queued jobs by priority.", labels=["priority"]
    )
    depth.add_metric(["high"], stats.queue.high)
    depth.add_metric(["normal"], stats.queue.normal)
    depth.add_metric(["low"], stats.queue.low)
    yield depth
    yield _gauge("perfgate_pool_queue_max", "Configured maximum of queued jobs.", stats.queue.max)
    jobs = CounterMetricFamily(
        "perfgate_pool_jobs", "Job attempts finished by the pool, by outcome.", labels=["outcome"]
    )
    jobs.add_metric(["succeeded"], stats.jobs.completed)
    jobs.add_metric(["failed"], stats.jobs.failed)
    yield jobs
    counts = stats.jobs
    yield _counter("perfgate_pool_job_retries", "Job retries.", counts.retried)
    yield _counter("perfgate_pool_jobs_submitted", "Jobs the pool accepted.", counts.submitted)
    yield _counter("perfgate_pool_jobs_rejected", "Jobs the pool refused.", counts.rejected)
    yield _counter("perfgate_pool_jobs_cancelled", "Job attempts cancelled.", counts.cancelled)
    yield _counter(
        "perfgate_pool_jobs_timed_out", "Job attempts over their timeout.", counts.timed_out
    )
    yield _counter("perfgate_pool_jobs_crashed", "Job attempts whose worker died.", counts.crashed)
    yield _counter(
        "perfgate_pool_spawn_failures", "Workers that failed to start.", counts.spawn_failures
    )
    yield _gauge("perfgate_pool_jobs_running", "Jobs running in the pool.", stats.running)
    yield _gauge(
        "perfgate_pool_accepting",
        "1 while the pool accepts jobs, 0 once it drains.",
        float(stats.accepting),
    )
    yield _gauge(
        "perfgate_pool_worker_reuse_ratio",
        "Python attempts run by a warm worker, 0-1.",
        stats.reuse_rate,
    )
    yield _counter(
        "perfgate_pool_workers_started", "Worker processes started.", stats.workers_started
    )
    yield _counter(
        "perfgate_pool_workers_retired_idle",
        "Workers stopped for being idle.",
        stats.workers_retired_idle,
    )
    restarts = CounterMetricFamily(
        "perfgate_pool_worker_restarts", "Worker restarts, by reason.", labels=["reason"]
    )
    for reason, value in sorted(stats.worker_restarts.items())[:20]:
        restarts.add_metric([reason], value)
    yield restarts
    yield from _task_limits(stats.limited)


def _task_limits(limited: dict[str, TaskLimitStats]) -> Iterator[Metric]:
    """Per task with a ``max_concurrency`` or ``rate_per_s`` (configured, so bounded): its
    queued jobs, those its limit holds back now, and its jobs running."""
    if not limited:
        return
    waiting = GaugeMetricFamily(
        "perfgate_task_jobs_queued", "Queued jobs of a limited task.", labels=["task"]
    )
    held = GaugeMetricFamily(
        "perfgate_task_jobs_held",
        "Queued jobs of a task waiting for its max_concurrency or rate_per_s.",
        labels=["task"],
    )
    running = GaugeMetricFamily(
        "perfgate_task_jobs_running",
        "Running jobs of a task with a max_concurrency.",
        labels=["task"],
    )
    for task, figures in sorted(limited.items())[:200]:
        waiting.add_metric([task], figures.waiting)
        held.add_metric([task], figures.waiting if figures.held else 0.0)
        if figures.running is not None:
            running.add_metric([task], figures.running)
    yield from (waiting, held, running)


def cache_series(stats: CacheSnapshot) -> Iterator[Metric]:
    def family(kind: type, name: str, doc: str) -> CounterMetricFamily | GaugeMetricFamily:
        return kind(name, doc, labels=["tier"])  # type: ignore[no-any-return]

    hits = family(CounterMetricFamily, "perfgate_cache_hits", "Cache hits, by tier.")
    misses = family(CounterMetricFamily, "perfgate_cache_misses", "Cache misses, by tier.")
    evictions = family(CounterMetricFamily, "perfgate_cache_evictions", "Cache evictions, by tier.")
    rejected = family(
        CounterMetricFamily, "perfgate_cache_rejected", "Results too large to cache, by tier."
    )
    held = family(GaugeMetricFamily, "perfgate_cache_bytes", "Bytes held, by tier.")
    entries = family(GaugeMetricFamily, "perfgate_cache_entries", "Entries held, by tier.")
    limit = family(GaugeMetricFamily, "perfgate_cache_max_bytes", "Configured size of each tier.")
    expirations = family(
        CounterMetricFamily, "perfgate_cache_expirations", "Entries past their TTL (L1)."
    )
    errors = family(
        CounterMetricFamily, "perfgate_cache_errors", "Disk errors, read as misses (L2)."
    )
    tiers: list[tuple[str, MemoryTierStats | DiskTierStats]] = []
    if stats.l1 is not None:
        tiers.append(("l1", stats.l1))
        expirations.add_metric(["l1"], stats.l1.expirations)
    if stats.l2 is not None:
        tiers.append(("l2", stats.l2))
        errors.add_metric(["l2"], stats.l2.errors)
    for tier, figures in tiers:
        hits.add_metric([tier], figures.hits)
        misses.add_metric([tier], figures.misses)
        evictions.add_metric([tier], figures.evictions)
        rejected.add_metric([tier], figures.rejected)
        held.add_metric([tier], figures.bytes)
        entries.add_metric([tier], figures.entries)
        limit.add_metric([tier], figures.max_bytes)
    yield from (hits, misses, evictions, rejected, held, entries, limit, expirations, errors)


def jobs_series(stats: JobsSnapshot) -> Iterator[Metric]:
    yield _gauge(
        "perfgate_jobs_events_pending",
        "Pool events not yet applied to the journal.",
        stats.events_pending,
    )
    yield _counter(
        "perfgate_jobs_progress_dropped",
        "Progress events dropped under load.",
        stats.progress_dropped,
    )
    yield _gauge("perfgate_jobs_waiters", "Long-polls waiting for a job to finish.", stats.waiters)
    yield _gauge(
        "perfgate_jobs_recovered", "Jobs recovered from the journal at start.", stats.recovered
    )
    yield _gauge(
        "perfgate_jobs_overflow", "Jobs waiting for room in the pool's queue.", stats.overflow
    )
    yield _gauge("perfgate_jobs_scheduled", "Delayed jobs armed on this instance.", stats.scheduled)


def journal_series(stats: JournalSnapshot) -> Iterator[Metric]:
    yield _counter(
        "perfgate_journal_events_lost",
        "Pool events the journal could not record.",
        stats.events_lost,
    )
    if stats.write_queue is not None:
        yield _gauge(
            "perfgate_journal_write_queue",
            "Writes waiting for the journal's writer.",
            stats.write_queue,
        )
    if stats.batches is not None:
        yield _counter(
            "perfgate_journal_batches", "Journal commits (group commits).", stats.batches
        )
    if stats.ops is not None:
        yield _counter("perfgate_journal_ops", "Journal writes committed.", stats.ops)
    if stats.recent_jobs is not None:
        yield _gauge(
            "perfgate_journal_recent_jobs",
            "Job records the journal serves from memory.",
            stats.recent_jobs,
        )


def edge_series(stats: EdgeSnapshot) -> Iterator[Metric]:
    yield _counter(
        "perfgate_http_rate_limited", "Requests refused by the rate limit.", stats.rate_limited
    )
    yield _counter(
        "perfgate_http_not_modified", "Responses answered 304 Not Modified.", stats.not_modified
    )
    yield _counter("perfgate_http_compressed", "Responses sent gzip-compressed.", stats.compressed)
