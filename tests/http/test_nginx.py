"""perfgate behind a real nginx configured by deploy/nginx.conf: jobs, WebSockets, the client's
address, and a graceful stop, all seen from the client side of the proxy."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.helpers import start_server, stop_server
from tests.http.nginx import Nginx

DRAIN_S = 3


class Stack:
    def __init__(self, proc: subprocess.Popen[bytes], ready: dict[str, Any], nginx: Nginx):
        self.proc = proc
        self.ready = ready
        self.nginx = nginx


def _hostport(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    env = {
        "PERFGATE_HTTP_TRUSTED_PROXIES": "127.0.0.1/32",
        "PERFGATE_POOL_DRAIN_TIMEOUT_S": str(DRAIN_S),
    }
    proc, ready = start_server(tmp_path, env=env)
    try:
        with Nginx(
            tmp_path / "nginx",
            http_upstream=_hostport(ready["http"]),
            ws_upstream=_hostport(ready["ws"]),
        ) as nginx:
            yield Stack(proc, ready, nginx)
    finally:
        stop_server(proc)


def _submit(base: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(base + "/v1/jobs", json=body, timeout=10)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    return job


def test_a_job_is_submitted_and_long_polled_through_nginx(stack: Stack) -> None:
    job = _submit(stack.nginx.http, {"task": "echo", "args": {"through": "nginx"}})
    response = httpx.get(f"{stack.nginx.http}/v1/jobs/{job['id']}?wait=10", timeout=20)
    assert response.status_code == 200
    done = response.json()
    assert done["state"] == "succeeded"
    assert done["result"] == {"through": "nginx"}
    assert response.headers["Server"].startswith("nginx")  # it really went through the proxy


def test_a_job_channel_is_watched_over_a_websocket_through_nginx(stack: Stack) -> None:
    job = _submit(stack.nginx.http, {"task": "sleep", "args": {"seconds": 0.3, "steps": 3}})
    events: list[dict[str, Any]] = []
    with connect(stack.nginx.ws + "/ws", open_timeout=10) as ws:
        welcome = json.loads(ws.recv(timeout=10))
        assert welcome["type"] == "welcome"
        ws.send(
            json.dumps({"op": "subscribe", "channel": f"jobs:{job['id']}", "since": 0, "id": 1})
        )
        while not (
            any(e.get("state") in ("succeeded", "failed", "dead") for e in events)
            and any(e.get("event") == "result" for e in events)
        ):
            frame = json.loads(ws.recv(timeout=10))
            if frame["type"] == "ack":
                assert frame["id"] == 1
            messages = frame["messages"] if frame["type"] == "batch" else [frame]
            events.extend(m["data"] for m in messages if m.get("type") == "message")
    states = [e["state"] for e in events if e["event"] == "state"]
    assert states[0] == "queued" and states[-1] == "succeeded"
    assert any(e["event"] == "progress" for e in events)
    assert any(e["event"] == "result" for e in events)


def test_job_events_flow_through_nginx_as_they_happen(stack: Stack) -> None:
    """Server-Sent Events are not held back by the proxy: the first progress event reaches
    the client while the job is still running (a buffering proxy would deliver it at the end)."""
    job = _submit(stack.nginx.http, {"task": "sleep", "args": {"seconds": 2.0, "steps": 4}})
    text = ""
    state_at_first_progress = None
    with httpx.stream("GET", f"{stack.nginx.http}/v1/jobs/{job['id']}/events", timeout=20) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        assert r.headers["Server"].startswith("nginx")
        for chunk in r.iter_text():
            text += chunk
            if state_at_first_progress is None and "event: progress" in text:
                # Asked of perfgate directly, past the proxy.
                direct = httpx.get(f"{stack.ready['http']}/v1/jobs/{job['id']}", timeout=10)
                state_at_first_progress = direct.json()["state"]
    assert state_at_first_progress == "running"
    assert text.count("event: progress") == 4
    assert text.rstrip().endswith('"state":"succeeded","attempt":1}')  # then the stream ended


def test_the_client_address_nginx_forwards_reaches_the_access_log(stack: Stack) -> None:
    # The client connects from 127.0.0.2 and claims to be 203.0.113.7. nginx forwards
    # "203.0.113.7, 127.0.0.2"; perfgate trusts only nginx (127.0.0.1), so the client is the
    # right-most hop it does not trust: the address nginx saw, not the claim.
    request_id = uuid.uuid4().hex
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, timeout=10) as client:
        response = client.get(
            stack.nginx.http + "/healthz",
            headers={"X-Forwarded-For": "203.0.113.7", "X-Request-ID": request_id},
        )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == request_id
    code, err = stop_server(stack.proc)
    assert code == 0, err[-4000:]
    (line,) = [line for line in err.splitlines() if f"request_id={request_id}" in line]
    assert "client=127.0.0.2 " in line, line


def test_sigterm_closes_websockets_through_nginx_with_1001(stack: Stack) -> None:
    with connect(stack.nginx.ws + "/ws", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
        ws.send(json.dumps({"op": "subscribe", "channel": "news", "id": 1}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ack"
        stack.proc.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=DRAIN_S + 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    code, err = stop_server(stack.proc)
    assert code == 0, err[-4000:]


def test_while_draining_nginx_passes_on_503_with_retry_after_not_a_502(stack: Stack) -> None:
    """The listener stays open during the drain, so the proxy's kept-alive upstream
    connections and its new ones get perfgate's answers: no HTML 502."""
    base = stack.nginx.http
    # A job longer than the drain keeps the service draining for DRAIN_S seconds.
    job = _submit(base, {"task": "sleep", "args": {"seconds": 30, "steps": 30}})
    assert httpx.get(base + "/readyz", timeout=10).status_code == 200  # warm an upstream conn
    stack.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while (readyz := httpx.get(base + "/readyz", timeout=10)).status_code == 200:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for _ in range(3):  # more than one: kept-alive upstream connections are closed, not broken
        assert readyz.status_code == 503 and readyz.headers["Retry-After"] == "1"
        submit = httpx.post(base + "/v1/jobs", json={"task": "sleep", "args": {}}, timeout=10)
        assert submit.status_code == 503, submit.text
        assert submit.headers["Content-Type"] == "application/problem+json"
        assert "Retry-After" in submit.headers
        read = httpx.get(f"{base}/v1/jobs/{job['id']}", timeout=10)
        assert read.status_code == 200 and read.json()["state"] == "running"
        readyz = httpx.get(base + "/readyz", timeout=10)
    code, err = stop_server(stack.proc)
    assert code == 0, err[-4000:]
