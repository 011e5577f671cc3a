"""Churn leaves nothing behind; drain closes everyone with 1001, spread over the window."""

import psutil
import pytest
import trio
from websockets.exceptions import InvalidStatus

from perfgate.auth import Authenticator
from perfgate.broker import MemoryHub
from perfgate.config import GatewayConfig
from perfgate.gateway import CloseInfo, Gateway
from tests.gateway.conftest import Start, eventually
from tests.gateway.wsclient import Client, RawClient


def count_tasks() -> int:
    count, stack = 0, [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


async def settle(gateway: Gateway) -> None:
    await eventually(lambda: not gateway.stats()["connections"])
    await trio.sleep(0.05)


async def cycle(url: str, i: int) -> None:
    if i % 3 == 2:  # every third client vanishes without a close handshake
        raw = await RawClient.connect(url)
        await raw.send_text(f'{{"op":"subscribe","channel":"churn:{i}"}}')
        await trio.lowlevel.checkpoint()
        raw.abort()
        return
    client = await Client.connect(url)
    await client.recv()
    ack = await client.request({"op": "subscribe", "id": i, "channel": f"churn:{i}"})
    assert ack["type"] == "ack"
    await client.close()


async def test_churn_returns_to_baseline(start_gateway: Start) -> None:
    gateway, url = await start_gateway(rate_limit_per_s=0)
    process = psutil.Process()
    for i in range(60):  # warm up caches, thread pools and allocator arenas
        await cycle(url, i)
    await settle(gateway)
    fds, tasks, rss = process.num_fds(), count_tasks(), process.memory_info().rss
    for i in range(1000):
        await cycle(url, i)
    await settle(gateway)
    stats = gateway.stats()
    assert stats["accepted"] >= 1000 and stats["internal_errors"] == 0
    assert stats["hub"]["subscriptions"] == 0 and stats["hub"]["channels"] == 0
    assert process.num_fds() <= fds
    assert count_tasks() == tasks
    growth_mb = (process.memory_info().rss - rss) / 2**20
    assert growth_mb < 8, f"RSS grew {growth_mb:.1f} MiB over 1000 cycles"


async def test_drain_closes_1001_in_batches_after_flushing() -> None:
    config = GatewayConfig(bind="127.0.0.1:0", batch_window_ms=300, heartbeat_min_s=5.0)
    hub = MemoryHub(10, 60.0, clock=trio.current_time)
    closed_at: list[float] = []

    def on_close(info: CloseInfo) -> None:
        assert info.code == 1001
        closed_at.append(trio.current_time())

    gateway = Gateway(config, hub, Authenticator({}), on_close=on_close)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(gateway.run)
        clients = [await Client.connect(url) for _ in range(8)]
        for client in clients:
            await client.recv()
            await client.request({"op": "subscribe", "id": 1, "channel": "c"})
        await gateway.publish("c", "last words")  # still inside the batch window
        await gateway.drain(2.0)
        with pytest.raises((InvalidStatus, OSError)):
            await Client.connect(url)
    # run() returned by itself once drained: the nursery closed without a cancel.
    for client in clients:
        assert [m["data"] for m in await client.messages(1)] == ["last words"]
        assert await client.wait_closed() == 1001
    assert len(closed_at) == 8
    assert max(closed_at) - min(closed_at) >= 0.8  # spread out, not all at once
    assert gateway.stats()["closes"] == {"1001": 8}
