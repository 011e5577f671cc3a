"""Job load for ``profile_main.py``, run in its own process so it does not share the server's CPU
accounting: ``N`` no-op ``echo`` jobs from ``C`` concurrent callers.

    python bench/studies/_job_load.py URL MODE JOBS CONCURRENCY

MODE ``wait``: one ``POST /v1/jobs?wait=10`` per job (httpx); ``poll``: ``POST /v1/jobs`` then
``GET /v1/jobs/{id}?wait=10``; ``client``: ``perfgate.client.AsyncClient`` (WebSocket submit,
pushed results). Prints ``{"jobs": N, "elapsed_s": S}`` as JSON.
"""

from __future__ import annotations

import json
import sys
import time

import httpx
import trio

from perfgate.client import AsyncClient


async def _http(url: str, mode: str, jobs: int, concurrency: int) -> None:
    remaining = [jobs]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:

        async def caller(i: int) -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                body = {"task": "echo", "args": {"i": i}}
                if mode == "wait":
                    r = await http.post("/v1/jobs?wait=10", json=body)
                    assert r.status_code == 200, r.text
                else:
                    r = await http.post("/v1/jobs", json=body)
                    assert r.status_code == 202, r.text
                    r = await http.get(f"/v1/jobs/{r.json()['id']}?wait=10")
                    assert r.json()["state"] == "succeeded", r.text

        async with trio.open_nursery() as nursery:
            for i in range(concurrency):
                nursery.start_soon(caller, i)


async def _client(url: str, jobs: int, concurrency: int) -> None:
    remaining = [jobs]
    async with AsyncClient(url) as client:

        async def caller(i: int) -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                job = await client.submit("echo", {"i": i})
                await job.result(timeout=30)

        async with trio.open_nursery() as nursery:
            for i in range(concurrency):
                nursery.start_soon(caller, i)


async def main(url: str, mode: str, jobs: int, concurrency: int) -> None:
    # warm up (connections, worker processes) before the measured part
    print(json.dumps({"phase": "warm"}), flush=True)
    if mode == "client":
        await _client(url, 50, concurrency)
    else:
        await _http(url, mode, 50, concurrency)
    sys.stdin.readline()  # the profiler samples the server's CPU here
    started = time.perf_counter()
    if mode == "client":
        await _client(url, jobs, concurrency)
    else:
        await _http(url, mode, jobs, concurrency)
    print(json.dumps({"jobs": jobs, "elapsed_s": time.perf_counter() - started}), flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
