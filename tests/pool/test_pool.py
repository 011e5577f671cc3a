"""The pool's public face (perfgate.pool.pool): submitting and validating, the queue bound,
cancelling queued jobs, draining, stats."""

from __future__ import annotations

import attrs
import pytest
from pool_helpers import Events, fast_config, make_tasks, one_worker, wait_until

from perfgate.config import TaskConfig
from perfgate.errors import QueueFull, Unavailable, ValidationError
from perfgate.pool import JobSpec, Pool


async def test_full_queue_rejects_at_submit() -> None:
    async with one_worker(max_queue=2) as pool:
        running = pool.submit(JobSpec(id="r", task="sleep", args={"seconds": 0.2}))
        await wait_until(lambda: pool.stats().running == 1)
        assert pool.queue_room() == 2  # the running job is not queued
        queued = [pool.submit(JobSpec(id=f"q{i}", task="echo")) for i in range(2)]
        assert pool.queue_room() == 0
        with pytest.raises(QueueFull) as info:
            pool.submit(JobSpec(id="over", task="echo"))
        assert info.value.status == 429
        assert info.value.retry_after_s >= 1
        stats = pool.stats()
        assert stats.queue.normal == 2
        assert stats.jobs.rejected == 1
        for handle in [running, *queued]:
            assert (await handle.wait()).state == "succeeded"
        # Room again once the queue drained.
        assert pool.queue_room() == 2
        assert (await pool.submit(JobSpec(id="later", task="echo")).wait()).state == "succeeded"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (JobSpec(id="a", task="nope"), "task"),
        (JobSpec(id="a", task="echo", priority="urgent"), "priority"),
        (JobSpec(id="a", task="echo", timeout_s=0), "timeout_s"),
        (JobSpec(id="a", task="echo", max_retries=-1), "max_retries"),
        (JobSpec(id="a", task="echo", args={"x": {1, 2}}), "args"),
        (JobSpec(id="a", task="cmd", args={}), "args.path"),
        (JobSpec(id="a", task="cmd", args={"path": ["a", "b"]}), "args.path"),
    ],
)
async def test_invalid_jobs_are_422_at_submit(spec: JobSpec, field: str) -> None:
    tasks = make_tasks()
    tasks["cmd"] = TaskConfig(name="cmd", command=("ls", "{path}"))
    async with Pool(fast_config(min_workers=0), tasks) as pool:
        with pytest.raises(ValidationError) as info:
            pool.submit(spec)
        assert info.value.status == 422
        assert info.value.extra.get("field") == field
        assert pool.stats().jobs.submitted == 0


async def test_duplicate_live_id_is_refused(pool: Pool) -> None:
    handle = pool.submit(JobSpec(id="same", task="sleep", args={"seconds": 0.1}))
    with pytest.raises(ValueError, match="already"):
        pool.submit(JobSpec(id="same", task="echo"))
    await handle.wait()


async def test_cancel_a_queued_job(events: Events) -> None:
    config = fast_config(min_workers=1, max_workers=1)
    async with Pool(config, make_tasks(), on_event=events) as pool:
        blocker = pool.submit(JobSpec(id="blocker", task="sleep", args={"seconds": 0.2}))
        await wait_until(lambda: blocker.state == "running")
        queued = pool.submit(JobSpec(id="q", task="echo"))
        assert pool.cancel("q") is True
        assert pool.cancel("q") is False
        assert pool.cancel("unknown") is False
        outcome = await queued.wait()
        assert (outcome.state, outcome.attempts) == ("cancelled", 0)
        assert events.states("q") == ["queued", "cancelled"]
        assert pool.stats().queue.total == 0
        assert (await blocker.wait()).state == "succeeded"


async def test_drain_waits_for_live_jobs_and_refuses_new_ones() -> None:
    async with one_worker() as pool:
        handles = [
            pool.submit(JobSpec(id=f"s{i}", task="sleep", args={"seconds": 0.05})) for i in range(3)
        ]
        assert await pool.drain(timeout_s=30) is True
        assert all(h.outcome is not None and h.outcome.state == "succeeded" for h in handles)
        with pytest.raises(Unavailable):
            pool.submit(JobSpec(id="late", task="echo"))
        assert pool.stats().accepting is False


async def test_drain_deadline_returns_false() -> None:
    async with one_worker() as pool:
        pool.submit(JobSpec(id="long", task="hang"))
        assert await pool.drain(timeout_s=0.2) is False


async def test_submit_outside_the_pool_is_unavailable() -> None:
    pool = Pool(fast_config(), make_tasks())
    with pytest.raises(Unavailable):
        pool.submit(JobSpec(id="x", task="echo"))


async def test_interrupted_job_wait_raises_unavailable() -> None:
    async with one_worker() as pool:
        handle = pool.submit(JobSpec(id="long", task="hang"))
        await wait_until(lambda: handle.state == "running")
    with pytest.raises(Unavailable):
        await handle.wait()


async def test_stats_shape(pool: Pool) -> None:
    await pool.submit(JobSpec(id="e", task="echo")).wait()
    stats = pool.stats()
    assert attrs.asdict(stats.workers) == {
        "idle": 1,
        "busy": 0,
        "starting": 0,
        "total": 1,
        "min": 1,
        "max": 2,
    }
    assert attrs.asdict(stats.queue) == {
        "high": 0,
        "normal": 0,
        "low": 0,
        "total": 0,
        "max": 10_000,
    }
    assert stats.jobs.completed == 1
    assert stats.run_time_ms.p99 >= stats.run_time_ms.mean > 0
    assert set(stats.worker_restarts) >= {"crash", "timeout", "max_jobs", "rss"}
