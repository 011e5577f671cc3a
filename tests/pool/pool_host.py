"""A server stand-in for the kill -9 test: runs a pool with busy workers and command jobs.

Usage: python pool_host.py READY_FILE. Once a Python job and a command job are running, writes
the pids of all its descendants to READY_FILE, then waits to be killed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psutil
import trio

from perfgate.config import PoolConfig, TaskConfig, builtin_tasks
from perfgate.jobs.lifecycle import PoolEvent, StateEvent
from perfgate.pool import JobSpec, Pool


async def main(ready_file: Path) -> None:
    tasks = builtin_tasks()
    tasks["nap"] = TaskConfig(name="nap", command=("sleep", "600"))
    tasks["nap_sh"] = TaskConfig(name="nap_sh", command=("sh", "-c", "sleep 600; echo never"))
    running: set[str] = set()

    def on_event(job_id: str, event: PoolEvent) -> None:
        if isinstance(event, StateEvent) and event.state == "running":
            running.add(job_id)

    async with Pool(PoolConfig(min_workers=3, max_workers=4), tasks, on_event=on_event) as pool:
        pool.submit(JobSpec(id="py", task="sleep", args={"seconds": 600}))
        pool.submit(JobSpec(id="cmd", task="nap"))
        pool.submit(JobSpec(id="cmd_sh", task="nap_sh"))
        # Wait until every process is up: the jobs are running and commands have children.
        while True:
            await trio.sleep(0.05)
            descendants = psutil.Process().children(recursive=True)
            names = [p.name() for p in descendants]
            if len(running) == 3 and names.count("sleep") == 2:
                break
        await trio.Path(ready_file).write_text(json.dumps([p.pid for p in descendants]))
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]))
