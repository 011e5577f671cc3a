"""Bad input over a real loopback WebSocket: refused with an error frame or a close frame,
never acked and then lost (issue 19.7), never closed without a word (issue 19.9)."""

from __future__ import annotations

import json

import pytest
import trio

from perfgate.gateway import CloseInfo
from tests.gateway.conftest import TOKENS, Start, eventually
from tests.gateway.wsclient import Client, RawClient


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        # Invalid UTF-8 in a text frame: wsproto refuses it as 1007.
        ({"payload": b'{"op":"ping","x":"\xff\xfe"}'}, 1007),
        # A truncated multi-byte sequence at the end of the message.
        ({"payload": b'{"op":"ping"}\xe2\x82'}, 1007),
        # A client frame that is not masked: a protocol error, 1002.
        ({"payload": b'{"op":"ping"}', "masked": False}, 1002),
    ],
)
async def test_unparseable_frame_gets_a_close_frame(
    start_gateway: Start, closes: list[CloseInfo], kwargs: dict, code: int
) -> None:
    _, url = await start_gateway()
    raw = await RawClient.connect(url)
    await raw.send_frame(**kwargs)
    with trio.fail_after(10):
        frames = await raw.read_frames_until_close()
    raw.close()
    close = [payload for opcode, payload in frames if opcode == 0x8]
    assert close, f"no close frame, only {frames}"
    assert int.from_bytes(close[0][:2], "big") == code
    await eventually(lambda: bool(closes))
    assert closes[0].code == code


async def test_a_clean_close_is_not_answered_twice(start_gateway: Start) -> None:
    _, url = await start_gateway()
    raw = await RawClient.connect(url)
    await raw.send_frame((1007).to_bytes(2, "big"), first=0x88)  # the client closes, 1007
    with trio.fail_after(10):
        frames = await raw.read_frames_until_close()
    raw.close()
    assert [opcode for opcode, _ in frames].count(0x8) == 1


BAD_DATA = [
    '{"op":"publish","id":1,"channel":"c","data":NaN}',
    '{"op":"publish","id":1,"channel":"c","data":[1,{"x":-Infinity}]}',
    '{"op":"publish","id":1,"channel":"c","data":1e999}',
    '{"op":"publish","id":1,"channel":"c","data":"\\ud800"}',
    '{"op":"publish","id":1,"channel":"c","data":{"\\udfff":1}}',
    '{"op":"publish","id":1,"channel":"c","data":{"a":["ok","x\\udc80y"]}}',
    '{"op":"publish","id":"\\ud800","channel":"c","data":1}',
    '{"op":"subscribe","id":1,"channel":"c","epoch":"\\ud800"}',
    '{"op":"publish","id":1,"channel":"c","data":' + "[" * 70 + "]" * 70 + "}",
]


@pytest.mark.parametrize("frame", BAD_DATA)
async def test_data_that_cannot_be_delivered_is_refused_not_acked(
    start_gateway: Start, frame: str
) -> None:
    gateway, url = await start_gateway(tokens=TOKENS, batch_window_ms=0)
    sub = await Client.connect(url, token="pub-token-123")
    await sub.recv()
    assert (await sub.request({"op": "subscribe", "id": 0, "channel": "c"}))["type"] == "ack"
    pub = await Client.connect(url, token="pub-token-123")
    await pub.recv()
    await pub.send(frame)
    reply = await pub.recv()
    assert reply["type"] == "error" and reply["code"] == "bad_request", reply
    # Nothing was published: the next message takes offset 1, and it is what arrives.
    ok = await pub.request({"op": "publish", "id": 2, "channel": "c", "data": "fine"})
    assert ok["type"] == "ack" and ok["offset"] == 1
    (message,) = await sub.messages(1)
    assert message["offset"] == 1 and message["data"] == "fine"
    assert gateway.stats()["internal_errors"] == 0
    await sub.close()
    await pub.close()


@pytest.mark.parametrize("channel", ["news\n", "news\r\n", "\nnews", "ne ws", "news\x00"])
async def test_channel_names_are_whole_strings(start_gateway: Start, channel: str) -> None:
    _, url = await start_gateway(tokens=TOKENS)
    client = await Client.connect(url, token="pub-token-123")
    await client.recv()
    for op in ("subscribe", "publish"):
        frame = {"op": op, "id": 1, "channel": channel, "data": 1}
        reply = await client.request(frame)
        assert reply["type"] == "error" and reply["code"] == "invalid", (op, reply)
    await client.send(json.dumps({"op": "ping", "id": 9}))
    assert (await client.recv())["type"] == "ack"
    await client.close()
