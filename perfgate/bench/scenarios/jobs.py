"""``jobs`` and ``jobs-throughput``: a job round trip, submit -> result.

``jobs`` is open-loop latency at a fixed rate (the issue's "sequential submit -> result");
``jobs-throughput`` is the same round trip from 32 concurrent callers in a CLOSED LOOP, each
submitting its next job when the last one's result arrived: completed jobs per second.

How a job is submitted depends on the system (the target's ``client``):

- ``http`` (perfgate, ``processpool``): one request per job, ``POST /v1/jobs?wait=S``
  ``{"task": "echo", "args": {...}}``, which answers with the finished job where the server
  holds the request (200), or with the job as it stands (202); then
  ``GET /v1/jobs/{id}?wait=S`` long-polls until it is finished (a server without
  ``POST ?wait`` ignores the parameter and takes this second request every time);
- ``perfgate-client``, ``celery``, ``arq``: their own Python clients
  (:mod:`perfgate.bench.scenarios.jobclients`), one per client process, shared by its callers.

Latency runs from the intended submit time to the result; a job that ends in any state but
``succeeded``, or with a result other than its echoed arguments, is an error.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from perfgate.bench.scenarios._base import ScenarioClient, UnexpectedResponse, expect_status
from perfgate.bench.scenarios.http11 import HttpConnection
from perfgate.bench.scenarios.jobclients import Call, open_caller

if TYPE_CHECKING:
    from perfgate.bench.loadgen import Op

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
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stack = AsyncExitStack()
        self._call: Call | None = None

    async def prepare(self, nursery: trio.Nursery) -> None:
        if self.spec.client != "http":
            self._call = await self._stack.enter_async_context(
                open_caller(
                    self.spec.client, self.spec.http_url, self.spec.redis_url, self.spec.connections
                )
            )

    def open_worker(self) -> Any:
        return self._worker() if self._call is None else self._client_worker(self._call)

    @asynccontextmanager
    async def _client_worker(self, call: Call) -> AsyncIterator[Op]:
        async def op(seq: int, intended_s: float, sent_s: float) -> None:
            args = {"seq": seq}
            result = await call(args, self.spec.timeout_s)
            if result != args:
                raise UnexpectedResponse(f"echo returned {result!r}")

        yield op

    async def operation(
        self, client: HttpConnection, seq: int, intended_s: float, sent_s: float
    ) -> None:
        args = {"seq": seq}
        wait_s = max(1, math.ceil(self.spec.timeout_s))
        response = await client.post(f"/v1/jobs?wait={wait_s}", {"task": "echo", "args": args})
        expect_status(response, 200, 201, 202)
        job = response.json()
        job_id = job["id"]
        # the load generator's timeout bounds this loop; each poll waits server-side
        while job.get("state") not in TERMINAL_STATES:
            response = await client.get(f"/v1/jobs/{job_id}", params={"wait": wait_s})
            expect_status(response, 200)
            job = response.json()
        check_finished_job(job, args)

    async def finish(self, start_at_s: float) -> dict[str, Any]:
        # no cancel scope around this: the client's own scopes, entered in prepare(), must
        # be exited in the scope they were entered in (trio refuses interleaved scopes)
        await self._stack.aclose()
        return {"deliveries": None}
