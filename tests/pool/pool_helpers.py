"""Helpers shared by the pool tests (a plain module: conftest is only for fixtures)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import psutil
import trio

from perfgate.config import PoolConfig, TaskConfig, builtin_tasks
from perfgate.jobs.lifecycle import PoolEvent
from perfgate.pool import JobOutcome, JobSpec, Pool


class Events:
    """Records ``on_event`` calls per job, as the JSON the job channels carry."""

    def __init__(self) -> None:
        self.by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def __call__(self, job_id: str, event: PoolEvent) -> None:
        self.by_job[job_id].append(event.to_json())

    def states(self, job_id: str) -> list[str]:
        return [e["state"] for e in self.by_job[job_id] if e["event"] == "state"]

    def of(self, job_id: str, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.by_job[job_id] if e["event"] == kind]


def make_tasks() -> dict[str, TaskConfig]:
    tasks = builtin_tasks()
    for name in (
        "pid",
        "chatty",
        "boom",
        "boom_permanent",
        "not_json",
        "segfault",
        "hard_exit",
        "self_kill",
        "hang",
        "spawn_and_hang",
        "spawn_and_exit",
        "flaky",
        "grow",
        "touch",
    ):
        tasks[name] = TaskConfig(name=name, target=f"pool_test_tasks:{name}", timeout_s=30)
    tasks["missing"] = TaskConfig(name="missing", target="pool_test_tasks:nope")
    return tasks


def fast_config(**overrides: Any) -> PoolConfig:
    values: dict[str, Any] = {
        "min_workers": 1,
        "max_workers": 2,
        "kill_grace_s": 0.5,
        "retry_backoff_s": 0.01,
        "retry_backoff_max_s": 0.05,
    }
    values.update(overrides)
    return PoolConfig(**values)


def one_worker(**overrides: Any) -> Pool:
    """A pool of exactly one worker over :func:`make_tasks`."""
    return Pool(fast_config(min_workers=1, max_workers=1, **overrides), make_tasks())


async def run(pool: Pool, job_id: str, task: str, **kwargs: Any) -> JobOutcome:
    """Submit one job and wait for its outcome."""
    args = kwargs.pop("args", {})
    return await pool.submit(JobSpec(id=job_id, task=task, args=args, **kwargs)).wait()


def children() -> list[psutil.Process]:
    """Our live (non-zombie) descendants."""
    alive = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_until(predicate: Callable[[], bool], *, timeout_s: float = 20.0) -> None:
    """Poll ``predicate`` (for outside effects, like a file a child writes); fail on timeout."""
    with trio.fail_after(timeout_s):
        while True:
            if predicate():
                return
            await trio.sleep(0.01)
