"""The WebSocket submit path, against a stand-in gateway (the real HTTP API behind it): the
ack carries the job, results are pushed on the same connection, error frames are typed, an
older gateway makes the client fall back to HTTP, and a lost link never loses a result."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from perfgate.client import AsyncClient, Invalid, PerfgateConnectionError


class StandInGateway:
    """Answers ``submit`` frames like the gateway does, committing each job through the real
    HTTP API; ``mode`` says what it does after the ack."""

    def __init__(self, http: str) -> None:
        self.http = http
        self.mode = "push"
        self.submits = 0

    async def handler(self, request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(json.dumps({"type": "welcome", "session": "s", "heartbeat_s": 30}))
        async with httpx.AsyncClient(base_url=self.http) as http:
            while True:
                try:
                    frame = json.loads(await ws.get_message())
                except ConnectionClosed:
                    return
                self.submits += 1
                rid = frame.pop("id")
                frame.pop("op")
                if self.mode == "legacy":
                    await ws.send_message(
                        json.dumps(
                            {
                                "type": "error",
                                "id": rid,
                                "code": "unknown_op",
                                "message": "unknown op 'submit'",
                            }
                        )
                    )
                    continue
                if frame["task"] == "bad":
                    await ws.send_message(
                        json.dumps(
                            {
                                "type": "error",
                                "id": rid,
                                "code": "invalid",
                                "message": "task: unknown task",
                                "errors": [{"field": "task", "message": "unknown task"}],
                            }
                        )
                    )
                    continue
                if self.mode == "silent":  # the frame is taken, never answered, then the link dies
                    await ws.aclose()
                    return
                job = (await http.post("/v1/jobs", json=frame)).json()
                job = (await http.get(f"/v1/jobs/{job['id']}?wait=10")).json()
                await ws.send_message(
                    json.dumps(
                        {
                            "type": "ack",
                            "id": rid,
                            "created": True,
                            "job": {**job, "state": "queued", "result": None},
                        }
                    )
                )
                if self.mode == "drop":
                    await ws.aclose()
                    return
                channel = f"jobs:{job['id']}"
                events = [
                    {"event": "result", "result": {"pushed": job["result"]}},
                    {"event": "state", "state": "succeeded", "attempt": 1},
                ]
                await ws.send_message(
                    json.dumps(
                        {
                            "type": "batch",
                            "messages": [
                                {"type": "message", "channel": channel, "offset": i + 1, "data": d}
                                for i, d in enumerate(events)
                            ],
                        }
                    )
                )


@pytest.fixture
async def stand_in(service_factory: Any, nursery: trio.Nursery) -> tuple[Any, StandInGateway]:
    gateway = StandInGateway("")
    server = await nursery.start(serve_websocket, gateway.handler, "127.0.0.1", 0, None)
    port = server.port
    service = await service_factory(gateway={"public_url": f"ws://127.0.0.1:{port}/ws"})
    gateway.http = service.http
    return service, gateway


async def test_results_are_pushed_on_the_submitting_connection(stand_in: Any) -> None:
    service, gateway = stand_in
    async with AsyncClient(service.http, timeout_s=10) as client:
        job = await client.submit("echo", {"x": 1})
        assert job.state == "queued"
        assert await job.result(timeout=10) == {"pushed": {"x": 1}}  # from the push, not HTTP
        assert await client.map("echo", [{"i": i} for i in range(5)]) == [
            {"pushed": {"i": i}} for i in range(5)
        ]
        with pytest.raises(Invalid) as info:
            await client.submit("bad")
        assert info.value.errors == [{"field": "task", "message": "unknown task"}]
    assert gateway.submits == 7


async def test_an_older_gateway_means_http(stand_in: Any) -> None:
    service, gateway = stand_in
    gateway.mode = "legacy"
    async with AsyncClient(service.http, timeout_s=10) as client:
        assert await (await client.submit("echo", {"x": 1})).result(timeout=10) == {"x": 1}
        assert await (await client.submit("echo", {"x": 2})).result(timeout=10) == {"x": 2}
    assert gateway.submits == 1  # asked once, then HTTP


async def test_a_lost_link_falls_back_without_losing_a_result(stand_in: Any) -> None:
    service, gateway = stand_in
    gateway.mode = "drop"
    async with AsyncClient(service.http, timeout_s=10) as client:
        job = await client.submit("echo", {"x": 1})  # acked, then the link is gone
        assert await job.result(timeout=10) == {"x": 1}  # read over HTTP instead
    gateway.mode = "silent"
    async with AsyncClient(service.http, timeout_s=10) as client:
        with pytest.raises(PerfgateConnectionError):  # committed or not: nobody knows
            await client.submit("echo", {"x": 2})
    async with AsyncClient(service.http, timeout_s=10) as client:
        # With an idempotency key a retry is safe: it goes over HTTP.
        job = await client.submit("echo", {"x": 3}, idempotency_key="k-3")
        assert await job.result(timeout=10) == {"x": 3}
