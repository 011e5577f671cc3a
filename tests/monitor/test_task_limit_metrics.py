"""Jobs held back by a task's limit show as waiting in /v1/stats and /metrics, and the series
pass ``promtool check metrics``."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from perfgate.config import TaskConfig
from tests.monitor.test_promtool import promtool

CAPPED = TaskConfig(name="capped", target="perfgate.tasks:sleep", max_concurrency=1)


async def test_held_jobs_are_in_stats_and_metrics(service_factory: Any) -> None:
    service = await service_factory(tasks={"capped": CAPPED}, pool={"max_workers": 3})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        body = {"task": "capped", "args": {"seconds": 30}}
        jobs = [(await http.post("/v1/jobs", json=body)).json() for _ in range(3)]
        with trio.fail_after(10):
            while True:
                pool = (await http.get("/v1/stats")).json()["pool"]
                if pool["limited"]["capped"]["running"] == 1:
                    break
                await trio.sleep(0.05)
        assert pool["limited"]["capped"] == {
            "waiting": 2,
            "held": True,
            "running": 1,
            "max_concurrency": 1,
            "rate_per_s": None,
        }
        # The other tasks are not held: an echo runs at once with free workers.
        done = (await http.post("/v1/jobs?wait=10", json={"task": "echo"})).json()
        assert done["state"] == "succeeded"
        text = (await http.get("/metrics")).text
        assert 'perfgate_task_jobs_held{task="capped"} 2.0' in text
        assert 'perfgate_task_jobs_running{task="capped"} 1.0' in text
        assert 'perfgate_task_jobs_queued{task="capped"} 2.0' in text
        checked = promtool("check", "metrics", stdin=text)
        assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
        for job in jobs:
            await http.delete(f"/v1/jobs/{job['id']}")
