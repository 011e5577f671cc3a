"""The pool's books (perfgate.pool.books): how job events are reported: a broken subscriber
does not break the pool, and a job's log is bounded."""

from __future__ import annotations

import sys

from pool_helpers import Events, fast_config, make_tasks

from perfgate.config import TaskConfig
from perfgate.jobs.lifecycle import PoolEvent
from perfgate.pool import JobSpec, Pool


async def test_on_event_errors_are_contained() -> None:
    def broken(job_id: str, event: PoolEvent) -> None:
        raise RuntimeError("subscriber bug")

    async with Pool(fast_config(), make_tasks(), on_event=broken) as pool:
        outcome = await pool.submit(JobSpec(id="e", task="echo", args={"a": 1})).wait()
        assert outcome.result == {"a": 1}


async def test_logs_are_bounded_per_job() -> None:
    events = Events()
    noisy = (sys.executable, "-c", "print('x' * 300)\nfor i in range(50): print(i)")
    tasks = {"noisy": TaskConfig(name="noisy", command=noisy)}
    config = fast_config(min_workers=0, max_workers=1, max_log_line_bytes=100)
    async with Pool(config, tasks, max_log_lines=10, on_event=events) as pool:
        outcome = await pool.submit(JobSpec(id="n", task="noisy")).wait()
    assert outcome.state == "succeeded"
    lines = [e["line"] for e in events.of("n", "log")]
    assert len(lines) == 11
    assert lines[0] == "x" * 100  # cut at max_log_line_bytes
    assert lines[1] == "x" * 100
    assert lines[-1] == "[perfgate] 43 more log lines dropped (max_log_lines=10)"
