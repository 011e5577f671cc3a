"""Two instances on one Redis behind one nginx: a client sees one service."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.gateway.wsclient import Client
from tests.helpers import server_log, start_server, stop_server
from tests.http.nginx import Nginx


@pytest.fixture
def front(tmp_path: Path, redis_url: str) -> Iterator[tuple[Nginx, list[subprocess.Popen[bytes]]]]:
    procs: list[subprocess.Popen[bytes]] = []
    http: list[str] = []
    ws: list[str] = []
    try:
        for name in ("a", "b"):
            home = tmp_path / name
            home.mkdir()
            proc, info = start_server(
                home, "--broker", redis_url, env={"PERFGATE_HTTP_TRUSTED_PROXIES": "127.0.0.1/32"}
            )
            procs.append(proc)
            http.append(info["http"].removeprefix("http://"))
            ws.append(info["ws"].removeprefix("ws://"))
        with Nginx(tmp_path / "nginx", http_upstream=http, ws_upstream=ws) as nginx:
            yield nginx, procs
    finally:
        for proc in procs:
            code, err = stop_server(proc)
            assert code == 0, err[-2000:]


async def test_one_service_through_the_proxy(
    front: tuple[Nginx, list[subprocess.Popen[bytes]]],
) -> None:
    nginx, instances = front
    ws = await Client.connect(nginx.ws)
    assert (await ws.recv())["type"] == "welcome"
    await ws.request({"op": "subscribe", "channel": "news", "id": 1})
    async with httpx.AsyncClient(base_url=nginx.http, timeout=30) as http:
        # Jobs: submitted and read through nginx, which spreads requests over both instances.
        ids = []
        for i in range(10):
            response = await http.post("/v1/jobs", json={"task": "echo", "args": {"i": i}})
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        for i, job_id in enumerate(ids):
            job = (await http.get(f"/v1/jobs/{job_id}?wait=20")).json()
            assert job["state"] == "succeeded" and job["result"] == {"i": i}
        listed: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"state": "succeeded", "limit": 4}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/v1/jobs", params=params)).json()
            listed += [job["id"] for job in page["jobs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(listed) == sorted(ids)
        # Channels: publishes land on either instance; the subscriber sees one sequence.
        for n in range(6):
            response = await http.post("/v1/channels/news/messages", json={"data": n})
            assert response.status_code == 202
    messages = await ws.messages(6)
    assert [m["offset"] for m in messages] == [1, 2, 3, 4, 5, 6]
    assert [m["data"] for m in messages] == list(range(6))
    await trio.to_thread.run_sync(ws.ws.close)
    # nginx really spread the work: both instances answered job requests.
    for proc in instances:
        assert "route=/v1/jobs/<job_id>" in server_log(proc)
