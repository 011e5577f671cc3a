"""Heartbeat over real sockets: a peer that never answers pings is closed with 4009."""

import json

import trio

from perfgate.gateway import CloseInfo
from tests.gateway.conftest import Start, eventually
from tests.gateway.wsclient import Client, RawClient


async def test_silent_peer_is_closed_4009_and_polite_peer_stays(
    start_gateway: Start, closes: list[CloseInfo]
) -> None:
    rtts: list[float] = []
    # The polite peer answers from its client thread: give it a pong deadline a loaded machine
    # meets (the silent one is still closed within a few seconds).
    gateway, url = await start_gateway(
        heartbeat_min_s=0.05, heartbeat_max_s=0.2, pong_timeout_s=2.0, close_timeout_s=1.0
    )
    gateway._on_rtt = rtts.append  # the hook a monitor would pass as on_rtt=
    polite = await Client.connect(url)  # websockets answers pings by itself
    assert (await polite.recv())["type"] == "welcome"
    silent = await RawClient.connect(url)  # never reads, so never answers
    with trio.fail_after(10):
        frames = await silent.read_frames_until_close()
    opcodes = [opcode for opcode, _ in frames]
    assert opcodes[0] == 0x1 and json.loads(frames[0][1])["type"] == "welcome"
    assert 0x9 in opcodes  # it was probed
    assert opcodes[-1] == 0x8
    assert int.from_bytes(frames[-1][1][:2], "big") == 4009
    await eventually(lambda: bool(closes))
    assert [c.code for c in closes] == [4009]
    assert (await polite.request({"op": "ping", "id": 1}))["type"] == "ack"
    stats = gateway.stats()
    assert stats["heartbeat"]["timeouts"] == 1
    assert stats["heartbeat"]["rtt_ms"]["count"] >= 1 and rtts
    assert stats["connections"] == 1
    await polite.close()
