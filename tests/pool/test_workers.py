"""The worker set (perfgate.pool.workers): its tasks live in the nursery it opens, leaving it
stops every worker it started; workers are reused warm, recycled, grown and shrunk."""

from __future__ import annotations

import os
import signal

import pytest
import trio
from pool_helpers import Events, children, fast_config, gone, make_tasks, run, wait_until

from perfgate.pool import JobSpec, Pool
from perfgate.pool.stats import PoolStats
from perfgate.pool.worker import Attempt, Worker
from perfgate.pool.workers import WorkerSet


async def _no_interrupt(worker: Worker, head: Attempt | None) -> None:
    raise AssertionError("no job runs here")


async def test_run_warms_min_workers_and_stops_them_all_when_cancelled() -> None:
    wakeup = trio.lowlevel.ParkingLot()  # unparked when a worker may have become available
    crew = WorkerSet(
        fast_config(min_workers=2, max_workers=3),
        PoolStats(),
        wakeup,
        on_interrupt=_no_interrupt,
        after_frames=lambda: None,
    )
    before = {proc.pid for proc in children()}
    async with trio.open_nursery() as nursery:
        await nursery.start(crew.run)
        assert len(crew.idle) == len(crew.all) == 2
        assert crew.nursery is not None and crew.nursery is not nursery
        crew.grow()  # a start in the background, in the set's own nursery
        with trio.fail_after(20):
            while len(crew.idle) < 3:
                await wakeup.park()
        pids = [worker.pid for worker in crew.all]
        nursery.cancel_scope.cancel()
    assert crew.nursery is None and not crew.all
    assert all(gone(pid) for pid in pids)
    assert {proc.pid for proc in children()} <= before


# -- the crew: warm reuse, recycling, growing and shrinking ----------------------------


async def test_workers_are_warm_and_reused(pool: Pool) -> None:
    pids = {(await run(pool, f"p{i}", "pid")).result for i in range(5)}
    assert len(pids) == 1
    stats = pool.stats()
    assert stats.workers_started == 1
    assert stats.reuse_rate == pytest.approx(0.8)


async def test_recycled_after_max_jobs_per_worker(events: Events) -> None:
    # One worker at a time: with two, a busy machine may start the second (growth) while the
    # first is still answering, and a job lands on it; the count, not the timing, is under test.
    config = fast_config(max_jobs_per_worker=2, max_workers=1)
    async with Pool(config, make_tasks(), on_event=events) as pool:
        pids = [(await run(pool, f"p{i}", "pid")).result for i in range(5)]
        assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
        assert pool.stats().worker_restarts["max_jobs"] == 2


async def test_recycled_when_rss_passes_the_limit(events: Events) -> None:
    async with Pool(fast_config(max_worker_rss_mb=200), make_tasks(), on_event=events) as pool:
        first = (await run(pool, "g1", "grow", args={"mb": 1})).result
        assert (await run(pool, "g2", "grow", args={"mb": 1})).result == first
        # Between jobs, never mid-job: the job that grew the worker past the limit succeeds.
        assert (await run(pool, "g3", "grow", args={"mb": 250})).state == "succeeded"
        assert (await run(pool, "p", "pid")).result != first
        assert pool.stats().worker_restarts["rss"] == 1


async def test_pool_grows_under_load_and_shrinks_when_idle(events: Events) -> None:
    config = fast_config(min_workers=1, max_workers=3, idle_timeout_s=0.3)
    async with Pool(config, make_tasks(), on_event=events) as pool:
        handles = [
            pool.submit(JobSpec(id=f"s{i}", task="sleep", args={"seconds": 0.3})) for i in range(6)
        ]
        for handle in handles:
            assert (await handle.wait()).state == "succeeded"
        assert pool.stats().workers_started == 3
        await wait_until(lambda: pool.stats().workers.total == 1)
        assert pool.stats().workers_retired_idle == 2
        assert (await run(pool, "e", "echo")).state == "succeeded"


async def test_an_idle_worker_that_dies_is_replaced_at_once(pool: Pool) -> None:
    before = (await run(pool, "p1", "pid")).result
    os.kill(before, signal.SIGKILL)
    await wait_until(
        lambda: pool.stats().worker_restarts["crash"] == 1 and pool.stats().workers.idle == 1
    )
    assert pool.stats().workers_started == 2
    outcome = await run(pool, "p2", "pid")
    assert (outcome.state, outcome.attempts) == ("succeeded", 1)
    assert outcome.result != before
