"""Coordinated omission: a server stall must show up as latency of everything it delayed.

A one-connection client at 50 requests/s against a server that stalls one request for 0.5 s:
the ~25 requests scheduled during the stall go out late. Measured from their intended send
times (open loop, corrected) they are slow; measured from when they actually left
(uncorrected, what a closed-loop tool reports) only the stalled one is. The margins are
an order of magnitude, so machine noise cannot flip the outcome.
"""

from __future__ import annotations

from functools import partial

import trio

from perfgate.bench.runner import RunSettings, run_once
from perfgate.bench.scenarios.http11 import HttpConnection
from perfgate.bench.server import Target

STALL_S = 0.5
STALLED_REQUEST = 5


async def stalling_http(counter: list[int], stream: trio.SocketStream) -> None:
    """Minimal keep-alive HTTP/1.1: 200 to every request; request #5 waits 0.5 s first."""
    buffer = b""
    async with stream:
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
            _, _, buffer = buffer.partition(b"\r\n\r\n")
            counter[0] += 1
            if counter[0] == STALLED_REQUEST:
                await trio.sleep(STALL_S)
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n"
                b'{"status":"ok"}'
            )


async def test_a_stall_is_charged_to_every_request_it_delayed(nursery: trio.Nursery) -> None:
    counter = [0]
    [listener] = await nursery.start(
        partial(trio.serve_tcp, partial(stalling_http, counter), 0, host="127.0.0.1")
    )
    port = listener.socket.getsockname()[1]
    target = Target("stall", f"http://127.0.0.1:{port}", "")
    settings = RunSettings("http", rate_per_s=50.0, duration_s=1.0, connections=1, processes=1)

    outcome = await run_once(settings, target)

    run = outcome.summary
    assert run["requests"] == 50
    assert run["errors"] == 0
    assert run["valid"] is True  # the client caught up well within the window
    corrected = outcome.corrected.get_value_at_percentile(75.0) / 1000.0
    uncorrected = outcome.uncorrected.get_value_at_percentile(75.0) / 1000.0
    assert corrected >= 100.0  # the delayed requests are charged their wait
    assert uncorrected < 100.0  # service time alone hides it: one slow request in 50
    assert run["send_lag_ms"]["max"] >= 300.0  # and the generator says it sent late
    assert run["uncorrected_latency_ms"]["max"] >= STALL_S * 1000 * 0.9


async def test_http_connection_recovers_after_a_cancelled_request(nursery: trio.Nursery) -> None:
    counter = [STALLED_REQUEST - 1]  # the first request stalls
    [listener] = await nursery.start(
        partial(trio.serve_tcp, partial(stalling_http, counter), 0, host="127.0.0.1")
    )
    port = listener.socket.getsockname()[1]
    async with HttpConnection(f"http://127.0.0.1:{port}") as connection:
        with trio.move_on_after(0.05) as scope:
            await connection.get("/healthz")
        assert scope.cancelled_caught
        response = await connection.post("/v1/anything", {"a": 1})
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert (response.method, response.path) == ("POST", "/v1/anything")
