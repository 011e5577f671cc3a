"""The worker set on its own: its tasks live in the nursery it opens, and leaving it stops
every worker it started."""

from __future__ import annotations

import trio
from pool_helpers import children, fast_config, gone

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
