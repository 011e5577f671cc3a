"""Two ``perfgate serve --broker redis://...`` processes on one real redis-server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.gateway.wsclient import Client
from tests.helpers import start_server, stop_server
from tests.redis_server import RedisServer

Instance = dict[str, Any]


@pytest.fixture
def pair(tmp_path: Path, redis_url: str) -> Iterator[tuple[Instance, Instance]]:
    procs: list[subprocess.Popen[bytes]] = []
    ready: list[Instance] = []
    try:
        for name in ("a", "b"):
            home = tmp_path / name
            home.mkdir()
            proc, info = start_server(home, "--broker", redis_url)
            procs.append(proc)
            ready.append({**info, "proc": proc})
        yield ready[0], ready[1]
    finally:
        for proc in procs:
            stop_server(proc)


async def http_publish(instance: Instance, channel: str, data: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=instance["http"], timeout=10) as client:
        return await client.post(f"/v1/channels/{channel}/messages", json={"data": data})


async def status(instance: Instance, path: str) -> int:
    async with httpx.AsyncClient(base_url=instance["http"], timeout=10) as client:
        return (await client.get(path)).status_code


async def eventually(instance: Instance, path: str, code: int) -> None:
    with trio.fail_after(20):
        while await status(instance, path) != code:  # noqa: ASYNC110
            await trio.sleep(0.05)


async def test_fan_out_across_instances_with_one_offset_sequence(
    pair: tuple[Instance, Instance],
) -> None:
    a, b = pair
    on_a = await Client.connect(a["ws"])
    on_b = await Client.connect(b["ws"])
    for client in (on_a, on_b):
        await client.recv()  # welcome
        ack = await client.request({"op": "subscribe", "channel": "room", "id": 1})
        assert ack["type"] == "ack" and ack["offset"] == 0
    offsets = []
    for i in range(10):
        response = await http_publish(b if i % 2 else a, "room", {"i": i})
        assert response.status_code == 202
        offsets.append(response.json()["offset"])
    ack = await on_a.request({"op": "publish", "channel": "room", "data": {"i": 10}, "id": 2})
    offsets.append(ack["offset"])
    assert offsets == list(range(1, 12))
    for client in (on_a, on_b):
        messages = await client.messages(11)
        assert [m["offset"] for m in messages] == offsets
        assert [m["data"] for m in messages] == [{"i": i} for i in range(11)]
        await client.close()


async def test_reconnect_to_the_other_instance_with_since(
    pair: tuple[Instance, Instance],
) -> None:
    a, b = pair
    first = await Client.connect(a["ws"])
    await first.recv()
    ack = await first.request({"op": "subscribe", "channel": "feed", "id": 1})
    for i in range(5):
        await http_publish(a, "feed", i)
    seen = await first.messages(5)
    await first.close()
    for i in range(5, 8):
        await http_publish(b, "feed", i)  # published while the client was away
    second = await Client.connect(b["ws"])
    await second.recv()
    resumed = await second.request(
        {"op": "subscribe", "channel": "feed", "since": seen[-1]["offset"], "epoch": ack["epoch"]}
        | {"id": 2}
    )
    assert resumed["recovered"] is True and resumed["epoch"] == ack["epoch"]
    await http_publish(a, "feed", 8)
    replayed = await second.messages(4)
    assert [(m["offset"], m["data"]) for m in replayed] == [(6, 5), (7, 6), (8, 7), (9, 8)]
    await second.close()


async def test_redis_restart_both_instances_503_then_recover(
    pair: tuple[Instance, Instance], redis_server: RedisServer
) -> None:
    a, b = pair
    redis_server.stop()
    for instance in (a, b):
        await eventually(instance, "/readyz", 503)
        async with httpx.AsyncClient(base_url=instance["http"], timeout=10) as client:
            assert "Retry-After" in (await client.get("/readyz")).headers
        response = await http_publish(instance, "room", "x")
        assert response.status_code == 503 and "Retry-After" in response.headers
        async with httpx.AsyncClient(base_url=instance["http"], timeout=10) as client:
            submit = await client.post("/v1/jobs", json={"task": "echo", "args": {"x": 1}})
        assert submit.status_code == 503 and "Retry-After" in submit.headers
    redis_server.start()
    for instance in (a, b):
        await eventually(instance, "/readyz", 200)
    subscriber = await Client.connect(a["ws"])
    await subscriber.recv()
    await subscriber.request({"op": "subscribe", "channel": "room", "id": 1})
    response = await http_publish(b, "room", "back")
    assert response.status_code == 202
    [message] = await subscriber.messages(1)
    assert message["data"] == "back"
    await subscriber.close()
