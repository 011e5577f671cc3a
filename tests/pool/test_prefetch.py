"""Prefetch: a busy worker gets its next job early; that job is not an attempt until it starts."""

from __future__ import annotations

from pathlib import Path

from perfgate.pool import JobSpec, Pool
from tests.pool.conftest import Events, fast_config, make_tasks, wait_until


def one_worker(events: Events) -> Pool:
    return Pool(fast_config(min_workers=1, max_workers=1), make_tasks(), on_event=events)


async def test_prefetched_job_runs_on_the_same_worker(events: Events) -> None:
    async with one_worker(events) as pool:
        first = pool.submit(JobSpec(id="a", task="sleep", args={"seconds": 0.2}))
        await wait_until(lambda: first.state == "running")
        second = pool.submit(JobSpec(id="b", task="pid"))
        await wait_until(lambda: pool.stats()["workers"]["idle"] == 0)
        assert second.state == "queued"  # sent ahead, but not started: no attempt yet
        assert (await first.wait()).state == "succeeded"
        outcome = await second.wait()
        assert (outcome.state, outcome.attempts) == ("succeeded", 1)
        assert pool.stats()["workers_started"] == 1


async def test_cancel_a_prefetched_job_skips_it(events: Events, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    async with one_worker(events) as pool:
        first = pool.submit(JobSpec(id="a", task="sleep", args={"seconds": 0.3}))
        await wait_until(lambda: first.state == "running")
        second = pool.submit(JobSpec(id="b", task="touch", args={"path": str(marker)}))
        await wait_until(lambda: pool.stats()["queue"]["total"] == 0)  # handed to the worker
        assert pool.cancel("b")
        outcome = await second.wait()
        assert (outcome.state, outcome.attempts) == ("cancelled", 0)
        assert events.states("b") == ["queued", "cancelled"]
        # The running job was not disturbed, and the skipped one never ran.
        assert (await first.wait()).state == "succeeded"
        after = await pool.submit(JobSpec(id="c", task="pid")).wait()
        assert after.state == "succeeded"
        assert not marker.exists()
        assert pool.stats()["worker_restarts"]["cancelled"] == 0


async def test_a_crash_does_not_cost_the_prefetched_job_an_attempt(events: Events) -> None:
    async with one_worker(events) as pool:
        crash = pool.submit(JobSpec(id="x", task="hard_exit", args={"code": 5}, timeout_s=60))
        victim = pool.submit(JobSpec(id="v", task="pid"))
        assert (await crash.wait()).error["exit_code"] == 5
        outcome = await victim.wait()
        assert (outcome.state, outcome.attempts) == ("succeeded", 1)
        assert events.states("v") == ["queued", "running", "succeeded"]


async def test_a_timeout_does_not_cost_the_prefetched_job_an_attempt(events: Events) -> None:
    async with one_worker(events) as pool:
        slow = pool.submit(JobSpec(id="s", task="hang", timeout_s=0.3))
        victim = pool.submit(JobSpec(id="v", task="pid"))
        assert (await slow.wait()).error["kind"] == "timeout"
        outcome = await victim.wait()
        assert (outcome.state, outcome.attempts) == ("succeeded", 1)
