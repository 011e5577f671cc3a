"""``jobs``: a job round trip, submit -> result (DESIGN.md §4).

``POST /v1/jobs {"task": "echo", "args": {...}}`` (202 with the job), then
``GET /v1/jobs/{id}?wait=S`` long-polls until the job is finished. Latency runs from the
intended submit time to the response that shows the job finished; a job that ends in any
state but ``succeeded``, or with a result other than its echoed arguments, is an error.
"""

from __future__ import annotations

import math
from typing import Any

from perfgate.bench.scenarios._base import ScenarioClient, UnexpectedResponse, expect_status
from perfgate.bench.scenarios.http11 import HttpConnection

TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "dead"})


def check_finished_job(job: dict[str, Any], args: dict[str, Any]) -> None:
    """Raise :class:`UnexpectedResponse` unless ``job`` is an echo that succeeded."""
    if job.get("state") != "succeeded":
        raise UnexpectedResponse(
            f"job {job.get('id')} ended {job.get('state')}: {job.get('error')}"
        )
    if job.get("result") != args:
        raise UnexpectedResponse(f"job {job.get('id')}: echo returned {job.get('result')!r}")


class JobsScenario(ScenarioClient):
    async def operation(
        self, client: HttpConnection, seq: int, intended_s: float, sent_s: float
    ) -> None:
        args = {"seq": seq}
        response = await client.post("/v1/jobs", {"task": "echo", "args": args})
        expect_status(response, 200, 201, 202)
        job = response.json()
        job_id = job["id"]
        wait_s = max(1, math.ceil(self.spec.timeout_s))
        # the load generator's timeout bounds this loop; each poll waits server-side
        while job.get("state") not in TERMINAL_STATES:
            response = await client.get(f"/v1/jobs/{job_id}", params={"wait": wait_s})
            expect_status(response, 200)
            job = response.json()
        check_finished_job(job, args)
