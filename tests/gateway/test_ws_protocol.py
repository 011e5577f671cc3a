"""The WebSocket protocol over real loopback sockets, with `websockets` as the client."""

import pytest
import trio
from websockets.exceptions import InvalidStatus

from perfgate.auth import Principal
from perfgate.errors import Forbidden, ValidationError
from tests.gateway.conftest import TOKENS, Start, eventually
from tests.gateway.wsclient import Client, RawClient


async def test_welcome_ping_and_errors_keep_the_connection(start_gateway: Start) -> None:
    _, url = await start_gateway()
    client = await Client.connect(url)
    welcome = await client.recv()
    assert welcome["type"] == "welcome" and welcome["session"]
    assert welcome["heartbeat_s"] > 0
    assert await client.request({"op": "ping", "id": 41}) == {"type": "ack", "id": 41}
    await client.send("{not json")
    reply = await client.recv()
    assert reply["type"] == "error" and reply["code"] == "bad_request" and reply["id"] is None
    reply = await client.request({"op": "teleport", "id": "x"})
    assert reply["type"] == "error" and reply["code"] == "unknown_op"
    await trio.to_thread.run_sync(client.ws.send, b"\x01\x02")
    assert (await client.recv())["code"] == "bad_request"
    assert (await client.request({"op": "ping", "id": 42}))["type"] == "ack"
    await client.close()


async def test_subscribe_publish_offsets(start_gateway: Start) -> None:
    _, url = await start_gateway(batch_window_ms=0)
    sub, pub = await Client.connect(url), await Client.connect(url)
    await sub.recv()
    await pub.recv()
    ack = await sub.request({"op": "subscribe", "id": 1, "channel": "room:1"})
    assert ack["channel"] == "room:1" and ack["offset"] == 0 and ack["epoch"]
    offsets = []
    for i in range(5):
        reply = await pub.request({"op": "publish", "id": i, "channel": "room:1", "data": {"i": i}})
        offsets.append(reply["offset"])
    assert offsets == [1, 2, 3, 4, 5]
    got = await sub.messages(5)
    assert [(m["offset"], m["data"]["i"]) for m in got] == [(o, o - 1) for o in offsets]
    assert all(m["channel"] == "room:1" for m in got)
    again = await sub.request({"op": "subscribe", "id": 2, "channel": "room:1"})
    assert again["type"] == "error" and again["code"] == "conflict"
    assert (await sub.request({"op": "unsubscribe", "id": 3, "channel": "room:1"}))["type"] == "ack"
    missing = await sub.request({"op": "unsubscribe", "id": 4, "channel": "room:1"})
    assert missing["code"] == "not_found"
    await pub.request({"op": "publish", "id": 9, "channel": "room:1", "data": "late"})
    assert (await sub.request({"op": "ping", "id": 5}))["type"] == "ack"
    assert sub.stash == []  # nothing arrived after unsubscribing
    bad = await sub.request({"op": "subscribe", "id": 6, "channel": "no spaces"})
    assert bad["code"] == "invalid"
    await sub.close()
    await pub.close()


async def test_namespaces_and_scopes(start_gateway: Start) -> None:
    gateway, url = await start_gateway(tokens=TOKENS)
    sub = await Client.connect(url, token="sub-token-123")
    pub = await Client.connect(url + "/ws?token=pub-token-123", path="")
    admin = await Client.connect(url, token="adm-token-123")
    for c in (sub, pub, admin):
        await c.recv()
    denied = await sub.request({"op": "publish", "id": 1, "channel": "room", "data": 1})
    assert denied["code"] == "forbidden"
    jobs = await pub.request({"op": "publish", "id": 2, "channel": "jobs:1", "data": 1})
    assert jobs["code"] == "forbidden"
    sys = await pub.request({"op": "subscribe", "id": 3, "channel": "$sys:stats"})
    assert sys["code"] == "forbidden"
    assert (await admin.request({"op": "subscribe", "id": 4, "channel": "$sys:stats"}))[
        "type"
    ] == "ack"
    # A job channel is its tenant's; a gateway with no job service knows of no job.
    hidden = await sub.request({"op": "subscribe", "id": 5, "channel": "jobs:1"})
    assert hidden["code"] == "not_found"
    ack = await admin.request({"op": "subscribe", "id": 6, "channel": "jobs:1"})
    assert ack["type"] == "ack"
    assert await gateway.publish("jobs:1", {"event": "state"}) == 1  # the server may
    with pytest.raises(ValidationError):
        await gateway.publish("room", 1, priority="urgent")
    with pytest.raises(Forbidden):
        await gateway.publish("jobs:1", 1, principal=Principal("p", frozenset({"publish"})))
    assert (await admin.messages(1))[0]["data"] == {"event": "state"}
    for c in (sub, pub, admin):
        await c.close()


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({}, 401),
        ({"token": "wrong-token-123"}, 401),
        ({"token": "sub-only-publish"}, 403),
        ({"token": "sub-token-123", "path": "/other"}, 404),
        ({"token": "sub-token-123", "origin": "https://evil.example"}, 403),
    ],
)
async def test_handshake_rejections(start_gateway: Start, kwargs: dict, status: int) -> None:
    gateway, url = await start_gateway(tokens=TOKENS, allowed_origins=("https://app.example",))
    with pytest.raises(InvalidStatus) as info:
        await Client.connect(url, **kwargs)
    assert info.value.response.status_code == status
    ok = await Client.connect(url, token="sub-token-123", origin="https://app.example")
    await ok.close()
    assert gateway.stats()["rejected"] == {str(status): 1}


async def test_max_connections_rejects_with_503(start_gateway: Start) -> None:
    _, url = await start_gateway(max_connections=2)
    a, b = await Client.connect(url), await Client.connect(url)
    with pytest.raises(InvalidStatus) as info:
        await Client.connect(url)
    assert info.value.response.status_code == 503
    await a.close()
    with trio.fail_after(5):
        while True:  # the slot frees once the server has seen the close
            try:
                c = await Client.connect(url)
                break
            except InvalidStatus:
                await trio.sleep(0.01)
    await b.close()
    await c.close()


async def test_oversized_frame_closes_1009(start_gateway: Start) -> None:
    _, url = await start_gateway(max_message_bytes=1000)
    client = await Client.connect(url)
    await client.recv()
    await client.send({"op": "publish", "channel": "c", "data": "x" * 2000})
    assert await client.wait_closed() == 1009


async def test_inbound_rate_limit_closes_1008(start_gateway: Start) -> None:
    _, url = await start_gateway(rate_limit_per_s=5)
    client = await Client.connect(url)
    await client.recv()
    for i in range(50):
        try:
            await client.send({"op": "ping", "id": i})
        except Exception:
            break
    assert await client.wait_closed() == 1008


async def test_vanished_client_does_not_hurt_others(start_gateway: Start) -> None:
    gateway, url = await start_gateway(batch_window_ms=0, queue_bytes=10_000_000)
    survivor = await Client.connect(url)
    await survivor.recv()
    await survivor.request({"op": "subscribe", "id": 1, "channel": "c"})
    doomed = []
    for _ in range(5):
        raw = await RawClient.connect(url)
        await raw.send_text('{"op":"subscribe","channel":"c"}')
        doomed.append(raw)
    await trio.sleep(0.1)
    blob = "y" * 50_000
    for i in range(40):  # big frames, so sends are mid-flight when the peers vanish
        await gateway.publish("c", {"i": i, "blob": blob})
        if i == 10:
            for raw in doomed:
                raw.abort()
        await trio.lowlevel.checkpoint()
    got = await survivor.messages(40)
    assert [m["data"]["i"] for m in got] == list(range(40))
    assert (await survivor.request({"op": "ping", "id": 2}))["type"] == "ack"
    await eventually(lambda: gateway.stats()["connections"] == 1)
    assert gateway.stats()["internal_errors"] == 0
    await survivor.close()
