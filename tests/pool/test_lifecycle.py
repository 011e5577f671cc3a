"""Leak-free by construction: however the pool is left, no child process survives it."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio
from pool_helpers import children, fast_config, gone, make_tasks, wait_until

from perfgate.config import TaskConfig
from perfgate.pool import JobSpec, Pool
from perfgate.pool.worker import Worker

HERE = Path(__file__).parent


def busy_tasks() -> dict[str, TaskConfig]:
    tasks = make_tasks()
    tasks["nap"] = TaskConfig(name="nap", command=("sleep", "600"))
    tasks["stubborn"] = TaskConfig(
        name="stubborn", command=("sh", "-c", "trap '' TERM; while :; do sleep 0.05; done")
    )
    return tasks


async def start_busy_work(pool: Pool) -> None:
    """A running Python job, a running command, a stubborn command, and queued jobs."""
    for job_id, task in [("py", "hang"), ("cmd", "nap"), ("stubborn", "stubborn")]:
        pool.submit(JobSpec(id=job_id, task=task))
    for i in range(3):
        pool.submit(JobSpec(id=f"q{i}", task="hang"))
    await wait_until(lambda: pool.stats().running >= 3 and len(children()) >= 6)


async def test_leaving_normally_stops_every_child() -> None:
    config = fast_config(min_workers=2, max_workers=3, kill_grace_s=0.2)
    async with Pool(config, busy_tasks()) as pool:
        await start_busy_work(pool)
    assert children() == []


async def test_leaving_by_cancellation_stops_every_child() -> None:
    config = fast_config(min_workers=2, max_workers=3, kill_grace_s=0.2)
    with trio.CancelScope() as scope:
        async with Pool(config, busy_tasks()) as pool:
            await start_busy_work(pool)
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert children() == []


async def test_an_error_in_another_component_stops_every_child() -> None:
    config = fast_config(min_workers=2, max_workers=3, kill_grace_s=0.2)

    async def run_pool(task_status: trio.TaskStatus[Pool]) -> None:
        await Pool(config, busy_tasks()).run(task_status=task_status)

    async def other_component(pool: Pool) -> None:
        await start_busy_work(pool)
        raise RuntimeError("another component failed")

    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="another component")):
        async with trio.open_nursery() as nursery:
            pool = await nursery.start(run_pool)
            nursery.start_soon(other_component, pool)
    assert children() == []


async def test_the_body_exception_comes_out_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with Pool(fast_config(), make_tasks()) as pool:
            await pool.submit(JobSpec(id="e", task="echo")).wait()
            raise KeyError("mine")
    assert children() == []


async def test_kill_9_of_the_server_takes_every_child_within_2_s(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    host = await trio.lowlevel.open_process(
        [sys.executable, str(HERE / "pool_host.py"), str(ready)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        stdin=subprocess.DEVNULL,
    )
    try:
        await wait_until(lambda: ready.exists() and ready.read_text() != "", timeout_s=60)
        pids = json.loads(ready.read_text())
        # 3 warm workers (one busy) + 2 shims + their commands (sleep, sh + its sleep).
        assert len(pids) >= 3 + 2 + 3
        assert not any(gone(pid) for pid in pids)
        host.send_signal(signal.SIGKILL)
        await host.wait()
        await wait_until(lambda: all(gone(pid) for pid in pids), timeout_s=2.0)
    finally:
        if host.returncode is None:
            host.kill()
            await host.wait()


async def test_a_thousand_jobs_leave_no_fds_or_children_behind(tmp_path: Path) -> None:
    me = psutil.Process()
    tasks = make_tasks()
    tasks["true"] = TaskConfig(name="true", command=("true",))
    config = fast_config(min_workers=2, max_workers=2, kill_grace_s=0.2, max_jobs_per_worker=60)
    # Count fds without the garbage earlier tests left (sockets, pipes in reference cycles):
    # a collection during the run would close those, and the count would then never come back
    # to a baseline that included them (the test used to time out that way, now and then).
    gc.collect()
    fds_before_pool = me.num_fds()
    async with Pool(config, tasks) as pool:
        await pool.submit(JobSpec(id="warm", task="echo")).wait()
        gc.collect()
        fds_warm = me.num_fds()
        handles = []
        for i in range(1000):
            if i % 100 == 7:
                spec = JobSpec(id=f"j{i}", task="hard_exit", args={"code": 1})
            elif i % 100 == 42:
                spec = JobSpec(id=f"j{i}", task="hang", timeout_s=0.05)
            elif i % 50 == 3:
                spec = JobSpec(id=f"j{i}", task="true")
            elif i % 100 == 77:
                spec = JobSpec(id=f"j{i}", task="boom", max_retries=1)
            else:
                spec = JobSpec(id=f"j{i}", task="echo", args={"i": i})
            handles.append(pool.submit(spec))
        outcomes = [await handle.wait() for handle in handles]
        states = [o.state for o in outcomes]
        assert states.count("succeeded") == 1000 - 10 - 10 - 10
        assert states.count("failed") == 20
        assert states.count("dead") == 10
        stats = pool.stats()
        assert stats.worker_restarts["crash"] == 10
        assert stats.worker_restarts["timeout"] == 10
        assert stats.worker_restarts["max_jobs"] >= 1
        # Replacements are warm again and nothing is left open: the same fds as before the load.
        # (A recycled worker may still be being stopped in the background for a moment.)
        await wait_until(
            lambda: (
                pool.stats().workers.idle == 2 and me.num_fds() == fds_warm and len(children()) == 2
            ),
            timeout_s=10,
        )
        assert pool.stats().workers.total == 2
    assert children() == []
    assert me.num_fds() == fds_before_pool


async def test_a_crashed_worker_closes_its_pipes_and_takes_its_group_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its pipes must not wait for the Worker object to be collected: a reference cycle can
    # keep one until the next full GC, which in a long-lived server may be a long way off.
    # Keeping every worker referenced here stands for that.
    kept: list[Worker] = []
    start = Worker.start.__func__  # type: ignore[attr-defined]

    async def start_and_keep(cls: type[Worker], *args: Any) -> Worker:
        worker: Worker = await start(cls, *args)
        kept.append(worker)
        return worker

    monkeypatch.setattr(Worker, "start", classmethod(start_and_keep))
    me = psutil.Process()
    pid_file = tmp_path / "grandchild"
    async with Pool(fast_config(min_workers=1, max_workers=1), make_tasks()) as pool:
        await pool.submit(JobSpec(id="warm", task="echo")).wait()
        fds_warm = me.num_fds()
        spec = JobSpec(id="x", task="spawn_and_exit", args={"pid_file": str(pid_file)})
        assert (await pool.submit(spec).wait()).error["kind"] == "crash"
        await wait_until(lambda: pool.stats().workers.idle == 1 and len(kept) == 2)
        # The replacement has the crashed worker's fds, and nothing more is open.
        assert me.num_fds() == fds_warm
        # What its task started went with it (same group), not at the pool's exit.
        await wait_until(lambda: gone(int(pid_file.read_text())), timeout_s=2)
        assert len(children()) == 1
