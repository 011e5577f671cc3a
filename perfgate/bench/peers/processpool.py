"""Peer ``processpool``: ``concurrent.futures.ProcessPoolExecutor`` behind the jobs API shape.

``POST /v1/jobs {"task": "echo", "args": {...}}`` -> 202 with the job; ``GET /v1/jobs/{id}``
with ``?wait=S`` long-polls. Only the ``echo`` task exists. Job state lives in a dict: this is
the floor of "run a Python function in another process and hand back the result".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any
from urllib.parse import parse_qs

from perfgate.bench.peers._asgi import (
    Receive,
    Scope,
    Send,
    bind_loopback,
    lifespan,
    read_body,
    send_json,
    write_ready_file,
)
from perfgate.bench.peers._uvicorn import make_server, serve_until_signal
from perfgate.bench.server import PeerOptions


def echo(**args: Any) -> Any:
    return args


class JobsApp:
    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool
        self.jobs: dict[str, dict[str, Any]] = {}
        self.done: dict[str, asyncio.Event] = {}
        self.ids = itertools.count(1)

    def _finish(self, job_id: str, future: Future[Any]) -> None:
        job = self.jobs[job_id]
        job["finished_at"] = time.time()
        if future.exception() is not None:
            job.update(state="failed", error=str(future.exception()))
        else:
            job.update(state="succeeded", result=future.result())
        self.done.pop(job_id).set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/healthz":
            await send_json(send, 200, {"status": "ok"})
        elif path == "/v1/jobs" and method == "POST":
            await self._submit(receive, send)
        elif path.startswith("/v1/jobs/") and method == "GET":
            query = parse_qs(scope.get("query_string", b"").decode())
            await self._get(
                path.removeprefix("/v1/jobs/"), float(query.get("wait", ["0"])[0]), send
            )
        else:
            await send_json(send, 404, {"title": "not found"})

    async def _submit(self, receive: Receive, send: Send) -> None:
        try:
            body = json.loads(await read_body(receive))
            task, args = body["task"], dict(body.get("args", {}))
        except (ValueError, KeyError, TypeError):
            await send_json(send, 400, {"title": "bad request"})
            return
        if task != "echo":
            await send_json(send, 404, {"title": f"unknown task {task}"})
            return
        job_id = str(next(self.ids))
        job = {
            "id": job_id,
            "task": task,
            "args": args,
            "state": "queued",
            "result": None,
            "error": None,
            "created_at": time.time(),
            "finished_at": None,
        }
        self.jobs[job_id] = job
        self.done[job_id] = asyncio.Event()
        future = self.pool.submit(echo, **args)
        loop = asyncio.get_running_loop()
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(self._finish, job_id, f))
        await send_json(send, 202, job)

    async def _get(self, job_id: str, wait_s: float, send: Send) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            await send_json(send, 404, {"title": "no such job"})
            return
        event = self.done.get(job_id)
        if event is not None and wait_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), wait_s)
        await send_json(send, 200, job)


def main(ready_file: str, options: PeerOptions) -> int:
    sock = bind_loopback()
    with ProcessPoolExecutor(max_workers=options.workers) as pool:
        # warm the workers so the first requests do not pay the spawn
        for f in [pool.submit(echo) for _ in range(options.workers)]:
            f.result()
        server = make_server(JobsApp(pool))
        asyncio.run(
            serve_until_signal([(server, sock)], lambda: write_ready_file(ready_file, sock, None))
        )
    return 0
