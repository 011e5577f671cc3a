"""Heartbeat over real sockets: a peer that never answers pings is closed with 4009."""

import json

import trio

from perfgate.gateway import CloseInfo
from perfgate.gateway.heartbeat import JITTER
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


async def test_an_idle_healthy_peer_is_pinged_once_per_max_interval(start_gateway: Start) -> None:
    """Issue 16.3: an idle connection's interval used to halve down to heartbeat_min_s."""
    max_s = 0.4
    gateway, url = await start_gateway(
        heartbeat_min_s=0.02, heartbeat_max_s=max_s, pong_timeout_s=1.0
    )
    polite = await Client.connect(url)  # answers pings, sends nothing else
    assert (await polite.recv())["heartbeat_s"] == max_s
    window_s = 2.0
    await trio.sleep(window_s)
    probes = gateway.stats()["heartbeat"]["probes"]
    assert 1 <= probes <= window_s / (max_s * (1 - JITTER)) + 1
    assert gateway.stats()["heartbeat"]["timeouts"] == 0
    await polite.close()


async def test_traffic_spares_a_busy_peer_its_pings(start_gateway: Start) -> None:
    gateway, url = await start_gateway(
        heartbeat_min_s=0.02, heartbeat_max_s=0.3, pong_timeout_s=1.0
    )
    busy = await Client.connect(url)
    await busy.recv()
    for i in range(15):
        assert (await busy.request({"op": "ping", "id": i}))["type"] == "ack"
        await trio.sleep(0.1)
    assert gateway.stats()["heartbeat"]["probes"] <= 1  # only the first check, its phase
    await busy.close()


async def test_a_new_connection_is_first_pinged_in_the_second_half_of_its_interval(
    start_gateway: Start,
) -> None:
    """A ping right after the handshake proves nothing and, in a reconnect storm, is a
    burst of work: the first check falls in (max_s / 2, max_s], then on the timer grid."""
    max_s = 4.0
    gateway, url = await start_gateway(heartbeat_min_s=0.5, heartbeat_max_s=max_s)
    start = trio.current_time()
    clients: list[Client] = []

    async def one() -> None:
        client = await Client.connect(url)
        await client.recv()  # the welcome
        clients.append(client)

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(one)
    # Every connection opened after start: none is due before start + max_s / 2 (with the
    # rule it replaced, each of the ten had a 3-in-8 chance of a ping by now).
    await trio.sleep_until(start + max_s / 2 - 0.5)
    assert gateway.stats()["heartbeat"]["probes"] == 0
    await eventually(lambda: gateway.stats()["heartbeat"]["probes"] == 10, limit_s=max_s + 2)
    for client in clients:
        await client.close()
