"""The asynchronous client: :class:`AsyncClient` and :class:`AsyncJob`, on anyio, so the
same code runs under trio and asyncio.

The fastest path the server offers is used: jobs are submitted over one WebSocket (pipelined,
written together when many are in flight) and their results pushed back on it; without a
gateway (or on an older server) jobs go over HTTP, a result is a long-poll, and
:meth:`AsyncClient.map` sends its jobs in batches.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from perfgate.client import _protocol as p
from perfgate.client._errors import (
    BadRequest,
    NotFound,
    PerfgateClientError,
    PerfgateConnectionError,
    PerfgateTimeout,
)
from perfgate.client._events import JobEvent, follow
from perfgate.client._link import JobLink, SubmitUnsupported, Watch
from perfgate.client._ws import NotSent, WebSocket

#: One long-poll asks the server to hold the request this long (it caps it at max_wait_s).
LONG_POLL_S = 30.0
#: After the WebSocket failed, HTTP is used for this long before it is tried again.
WS_RETRY_S = 5.0
#: Jobs per ``POST /v1/jobs:batch`` (the server's default ``max_batch_jobs``).
BATCH_JOBS = 100


class AsyncClient:
    """A client of one perfgate server; use it as ``async with AsyncClient(url) as client``.

    ``url`` is the HTTP base URL; ``token`` the bearer token; ``timeout_s`` bounds every call
    (connect, request, ack), so an unreachable server is :class:`PerfgateConnectionError` or
    :class:`PerfgateTimeout`, never a hang. ``use_ws=False`` keeps to HTTP. Runs under trio
    and asyncio."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        use_ws: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        from perfgate.client._http import HttpTransport

        self.timeout_s = timeout_s
        self._token = token
        self._ssl_context = ssl_context
        self._endpoint = p.parse_endpoint(url)
        self._http = HttpTransport(self._endpoint, token=token, ssl_context=ssl_context)
        self._use_ws = use_ws
        self._ws_endpoint: p.Endpoint | None = None
        self._link: JobLink | None = None
        self._link_lock = anyio.Lock()
        self._ws_retry_at = 0.0
        # How fast submit frames may go: unknown until /v1/info says; the gateway's default
        # frame limit until then.
        self._pace = p.FramePace(100.0)
        self._submit_over_ws = use_ws
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> AsyncClient:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        try:
            # The body's own exception is not handed to the task group: it propagates as
            # raised, not wrapped in an ExceptionGroup (the group's tasks never raise).
            await self._tg.__aexit__(None, None, None)
            return None
        finally:
            self._tg = None
            self._link = None
            await self._http.aclose()

    # -- plumbing -------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """One HTTP call to the API (JSON in and out; typed errors)."""
        return await self._http.request(
            method, path, body=body, query=query, timeout_s=timeout_s or self.timeout_s
        )

    async def ws_endpoint(self) -> p.Endpoint:
        """The gateway's address, learnt once from ``GET /v1/info``."""
        if self._ws_endpoint is None:
            info = await self.request("GET", "/v1/info")
            info = info if isinstance(info, dict) else {}
            self._ws_endpoint = p.resolve_ws_url(self._endpoint, info.get("ws"))
            self._pace = p.submit_pace(info)
        return self._ws_endpoint

    async def connect_ws(self) -> WebSocket:
        """A new WebSocket to the gateway (bounded by ``timeout_s``)."""
        return await WebSocket.connect(
            await self.ws_endpoint(),
            token=self._token,
            timeout_s=self.timeout_s,
            ssl_context=self._ssl_context,
        )

    async def _job_link(self) -> JobLink | None:
        """The shared WebSocket, (re)opened as needed; None while HTTP is to be used."""
        if not self._submit_over_ws or self._tg is None:
            return None
        link = self._link
        if link is not None and link.lost is None:
            return link
        async with self._link_lock:
            if self._link is not None and self._link.lost is None:
                return self._link
            if anyio.current_time() < self._ws_retry_at:
                return None
            try:
                ws = await self.connect_ws()
            except NotFound:  # no /v1/info: a server without this endpoint
                self._submit_over_ws = False
                return None
            except PerfgateClientError:
                self._ws_retry_at = anyio.current_time() + WS_RETRY_S
                return None
            self._link = JobLink(ws)
            await self._tg.start(self._link.run)
            return self._link

    # -- jobs -----------------------------------------------------------------------------------

    async def submit(
        self,
        task: str,
        args: Any = None,
        *,
        priority: str | None = None,
        timeout_s: float | None = None,
        max_retries: int | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncJob:
        """Submit a job; it is committed when this returns. Raises the typed problem error
        the server answered (``Invalid`` naming the field, ``RateLimited``...)."""
        body = p.submit_body(
            task,
            args,
            priority=priority,
            timeout_s=timeout_s,
            max_retries=max_retries,
            idempotency_key=idempotency_key,
        )
        return await self._submit(body)

    async def _submit(self, body: dict[str, Any]) -> AsyncJob:
        link = await self._job_link()
        # A server that holds submit frames to its frame limit would close the connection
        # over it (1008): the frames the pace does not allow go over HTTP instead of waiting.
        # A server that paces submits itself (by those in flight) sets no pace.
        if link is not None and self._pace.take(anyio.current_time()):
            try:
                job, watch = await link.submit(body, timeout_s=self.timeout_s)
                return AsyncJob(self, job, watch)
            except SubmitUnsupported:
                self._submit_over_ws = False
                await link.aclose()
            except NotSent:
                pass
            except PerfgateConnectionError:
                # Lost after the frame went out: committed or not, nobody knows. A retry
                # is safe only with an idempotency key (it returns the first job).
                if "idempotency_key" not in body:
                    raise
        job = p.job_of(await self.request("POST", "/v1/jobs", body=body))
        return AsyncJob(self, job, None)

    async def run(
        self,
        task: str,
        args: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the result's deadline, not the call's
        **options: Any,
    ) -> Any:
        """Submit a job and return its result (one request over HTTP: ``POST ?wait=``)."""
        body = p.submit_body(task, args, **options)
        if await self._job_link() is None:
            deadline = None if timeout is None else anyio.current_time() + timeout
            wait_s = _remaining(deadline, LONG_POLL_S)
            job = p.job_of(
                await self.request(
                    "POST",
                    "/v1/jobs",
                    body=body,
                    query={"wait": wait_s},
                    timeout_s=self.timeout_s + wait_s,
                )
            )
            left = None if deadline is None else max(0.0, deadline - anyio.current_time())
            return await AsyncJob(self, job, None).result(left)
        return await (await self._submit(body)).result(timeout)

    def job(self, job_id: str) -> AsyncJob:
        """A handle on an existing job (nothing is fetched until asked)."""
        return AsyncJob(self, {"id": job_id, "state": "unknown"}, None)

    async def map(
        self,
        task: str,
        args_iterable: Iterable[Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - per job, as in result()
        concurrency: int = 256,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """Run ``task`` once per item of ``args_iterable``; the results in order. With
        ``return_exceptions``, a failed job's :class:`JobError` takes its place; else the first
        failure (in order) is raised once all are done. At most ``concurrency`` in flight."""
        bodies = [p.submit_body(task, args) for args in args_iterable]
        out: list[Any] = [None] * len(bodies)
        limit = anyio.Semaphore(concurrency)

        async def one(index: int, job: AsyncJob | None) -> None:
            async with limit:
                try:
                    if job is None:
                        job = await self._submit(bodies[index])
                    out[index] = await job.result(timeout)
                except PerfgateClientError as exc:
                    out[index] = exc

        # As many as the WebSocket's pace allows go over it (pipelined); the rest in batches.
        over_ws = 0
        if await self._job_link() is not None:
            over_ws = int(min(len(bodies), self._pace.room(anyio.current_time())))
        jobs: list[AsyncJob | None] = [None] * over_ws
        if over_ws < len(bodies):
            jobs += await self._submit_batches(bodies[over_ws:])
        async with anyio.create_task_group() as tg:
            for index, job in enumerate(jobs):
                tg.start_soon(one, index, job)
        if not return_exceptions:
            for value in out:
                if isinstance(value, PerfgateClientError):
                    raise value
        return out

    async def _submit_batches(self, bodies: list[dict[str, Any]]) -> list[AsyncJob | None]:
        """Submit over ``POST /v1/jobs:batch``; None for each item to submit one by one (a
        server without the route). A refused item raises its problem error."""
        jobs: list[AsyncJob | None] = []
        for start in range(0, len(bodies), BATCH_JOBS):
            chunk = bodies[start : start + BATCH_JOBS]
            try:
                answer = await self.request("POST", "/v1/jobs:batch", body={"jobs": chunk})
            except (NotFound, BadRequest) as exc:
                if exc.status not in (404, 405):
                    raise
                return jobs + [None] * (len(bodies) - len(jobs))
            items = answer.get("jobs") if isinstance(answer, dict) else None
            if not isinstance(items, list) or len(items) != len(chunk):
                raise PerfgateClientError("batch answer does not match the batch")
            for item in items:
                if not isinstance(item, dict) or "job" not in item:
                    error = item.get("error") if isinstance(item, dict) else None
                    raise p.problem_error(int(item.get("status", 400)), error or {})
                jobs.append(AsyncJob(self, p.job_of(item["job"]), None))
        return jobs


class AsyncJob:
    """A submitted job. ``id``; ``job`` is its JSON as last seen (``refresh()`` updates it)."""

    def __init__(self, client: AsyncClient, job: dict[str, Any], watch: Watch | None) -> None:
        self._client = client
        self.job = job
        self.id: str = job["id"]
        self._watch = watch

    def __repr__(self) -> str:
        return f"<AsyncJob {self.id} {self.job.get('state')}>"

    @property
    def state(self) -> str:
        return str(self.job.get("state"))

    async def result(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - documented API
        """The job's result once it finished; raises :class:`JobFailed`, :class:`JobDead` or
        :class:`JobCancelled` (with the server's error) if it did not succeed, and
        :class:`PerfgateTimeout` if ``timeout`` seconds passed first (the job goes on)."""
        deadline = None if timeout is None else anyio.current_time() + timeout
        if self.job.get("state") in p.FINAL_STATES:
            return p.job_outcome(self.job)
        watch = self._watch
        if watch is not None:
            # Pushed on the link; a quiet link is checked over HTTP now and then.
            with anyio.move_on_after(_remaining(deadline, LONG_POLL_S)):
                await watch.settled.wait()
            final = watch.final
            if final is not None:
                if final["state"] != "succeeded":
                    raise p.job_error(self.id, final["state"], final.get("error"))
                if watch.has_result:
                    return watch.result
        while True:
            wait_s = _remaining(deadline, LONG_POLL_S)
            self.job = p.job_of(
                await self._client.request(
                    "GET",
                    p.job_path(self.id),
                    query={"wait": round(wait_s, 3)},
                    timeout_s=self._client.timeout_s + wait_s,
                )
            )
            if self.job.get("state") in p.FINAL_STATES:
                return p.job_outcome(self.job)
            if deadline is not None and anyio.current_time() >= deadline:
                raise PerfgateTimeout(f"job {self.id} still {self.state} after {timeout:g} s")

    async def refresh(self) -> dict[str, Any]:
        """Read the job now; its JSON (also kept as :attr:`job`)."""
        self.job = p.job_of(await self._client.request("GET", p.job_path(self.id)))
        return self.job

    async def cancel(self) -> dict[str, Any]:
        """Cancel the job if it is queued or running (idempotent); its JSON."""
        self.job = p.job_of(await self._client.request("DELETE", p.job_path(self.id)))
        return self.job

    def events(self) -> AsyncIterator[JobEvent]:
        """The job's events (state, progress, log, result, error) from its first, ending
        after its final state; none is missed or repeated across reconnects. Needs the
        gateway; close it early with ``aclose()`` (or ``async with contextlib.aclosing``)."""
        return follow(
            self._client.connect_ws,
            self.id,
            reconnect_s=self._client.timeout_s,
            read_job=self.refresh,
        )


def _remaining(deadline: float | None, cap_s: float) -> float:
    if deadline is None:
        return cap_s
    return max(0.0, min(cap_s, deadline - anyio.current_time()))
