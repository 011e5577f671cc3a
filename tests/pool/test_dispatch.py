"""The dispatch step (perfgate.pool.dispatch): the best queued job goes first, and nothing
overtakes it."""

from __future__ import annotations

from pool_helpers import fast_config, make_tasks, wait_until

from perfgate.config import TaskConfig
from perfgate.jobs.lifecycle import PoolEvent, StateEvent
from perfgate.pool import JobSpec, Pool


async def test_priorities_run_high_first_then_fifo() -> None:
    order: list[str] = []

    def record(job_id: str, event: PoolEvent) -> None:
        if isinstance(event, StateEvent) and event.state == "running":
            order.append(job_id)

    config = fast_config(min_workers=1, max_workers=1)
    async with Pool(config, make_tasks(), on_event=record) as pool:
        blocker = pool.submit(JobSpec(id="blocker", task="sleep", args={"seconds": 0.2}))
        await wait_until(lambda: order == ["blocker"])
        handles = [
            pool.submit(JobSpec(id=job_id, task="echo", priority=priority))
            for job_id, priority in [
                ("low1", "low"),
                ("normal1", "normal"),
                ("high1", "high"),
                ("normal2", None),  # the task's priority: normal
                ("high2", "high"),
            ]
        ]
        await blocker.wait()
        for handle in handles:
            await handle.wait()
    assert order == ["blocker", "high1", "high2", "normal1", "normal2", "low1"]


async def test_task_priority_is_the_default() -> None:
    tasks = make_tasks()
    tasks["urgent"] = TaskConfig(name="urgent", target="perfgate.tasks:echo", priority="high")
    order: list[str] = []
    config = fast_config(min_workers=1, max_workers=1)

    def record(job_id: str, event: PoolEvent) -> None:
        if isinstance(event, StateEvent) and event.state == "running":
            order.append(job_id)

    async with Pool(config, tasks, on_event=record) as pool:
        blocker = pool.submit(JobSpec(id="blocker", task="sleep", args={"seconds": 0.2}))
        await wait_until(lambda: order == ["blocker"])
        a = pool.submit(JobSpec(id="plain", task="echo"))
        b = pool.submit(JobSpec(id="urgent", task="urgent"))
        for handle in (blocker, a, b):
            await handle.wait()
    assert order == ["blocker", "urgent", "plain"]
