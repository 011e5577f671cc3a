"""The hub's channel cap and byte bounds, seen by WebSocket clients (issue 19 item 5)."""

from __future__ import annotations

from typing import Any

import httpx

from perfgate.broker import MemoryHub
from tests.gateway.conftest import Start
from tests.gateway.wsclient import Client


async def test_the_channel_cap_is_an_error_frame_for_subscribe_and_publish(
    start_gateway: Start,
) -> None:
    hub = MemoryHub(10, 60.0, max_channels=2)
    _gateway, url = await start_gateway(hub=hub)
    client = await Client.connect(url)
    await client.recv()
    for i, name in enumerate(("a", "b")):
        assert (await client.request({"op": "subscribe", "id": i, "channel": name}))[
            "type"
        ] == "ack"
    refused = await client.request({"op": "subscribe", "id": 3, "channel": "c"})
    assert refused["type"] == "error" and refused["code"] == "too_many_channels"
    assert "max_channels (2)" in refused["message"]
    published = await client.request({"op": "publish", "id": 4, "channel": "d", "data": 1})
    assert published["code"] == "too_many_channels"
    # The connection is still fine, and existing channels still work.
    ack = await client.request({"op": "publish", "id": 5, "channel": "a", "data": "ok"})
    assert ack["type"] == "ack" and ack["offset"] == 1
    assert [m["data"] for m in await client.messages(1)] == ["ok"]
    await client.close()


async def test_large_messages_reach_subscribers_intact_and_history_stays_bounded(
    start_gateway: Start,
) -> None:
    hub = MemoryHub(1000, 60.0, history_bytes=256 * 1024)
    _gateway, url = await start_gateway(hub=hub, max_message_bytes=200_000)
    sub = await Client.connect(url)
    await sub.recv()
    await sub.request({"op": "subscribe", "id": 1, "channel": "big"})
    pub = await Client.connect(url)
    await pub.recv()
    body = "é" * 30_000  # 60 KB of UTF-8
    for i in range(20):
        ack = await pub.request({"op": "publish", "id": i, "channel": "big", "data": [i, body]})
        assert ack["offset"] == i + 1
    got = await sub.messages(20)
    assert [m["data"] for m in got] == [[i, body] for i in range(20)]
    stats = hub.stats()
    assert 0 < stats["retained_bytes"] <= 256 * 1024 and stats["retained_messages"] < 20
    late = await Client.connect(url)
    await late.recv()
    ack = await late.request({"op": "subscribe", "id": 9, "channel": "big", "since": 0})
    assert ack["recovered"] is False  # the first messages were evicted: a visible gap
    kept = stats["retained_messages"]
    resumed = await Client.connect(url)
    await resumed.recv()
    ack = await resumed.request(
        {"op": "subscribe", "id": 11, "channel": "big", "since": 20 - kept, "epoch": ack["epoch"]}
    )
    assert ack["recovered"] is True
    assert [m["data"][0] for m in await resumed.messages(kept)] == list(range(20 - kept, 20))
    for client in (sub, pub, late, resumed):
        await client.close()


async def test_the_channel_cap_over_http_is_a_503_problem_and_jobs_still_run(
    service_factory: Any,
) -> None:
    service = await service_factory(gateway={"max_channels": 4})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        statuses = []
        for i in range(6):
            reply = await http.post(f"/v1/channels/room-{i}/messages", json={"data": i})
            statuses.append(reply.status_code)
        assert statuses[0] == 202 and statuses[-1] == 503
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        assert int(reply.headers["Retry-After"]) >= 1
        problem = reply.json()
        assert "max_channels (4)" in problem["detail"]
        # An existing channel still takes messages, and the server's job channels are not
        # refused: a job submitted at the cap runs and reports on its channel.
        assert (
            await http.post("/v1/channels/room-0/messages", json={"data": 1})
        ).status_code == 202
        job = (await http.post("/v1/jobs", json={"task": "echo", "args": {"x": 1}})).json()
        done = (await http.get(f"/v1/jobs/{job['id']}?wait=20")).json()
        assert done["state"] == "succeeded"
        ws = await Client.connect(service.ws)
        await ws.recv()
        ack = await ws.request(
            {"op": "subscribe", "channel": f"jobs:{job['id']}", "since": 0, "id": 1}
        )
        assert ack["type"] == "ack" and ack["recovered"] is True and ack["offset"] > 0
        await ws.close()
