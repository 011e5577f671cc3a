"""Recovery with `since`: replay, then live, with no duplicate and no gap at the seam."""

from typing import Any

import trio

from perfgate.broker import MemoryHub, Message, Replay, Sink
from tests.gateway.conftest import Start
from tests.gateway.wsclient import Client


async def connect(url: str) -> Client:
    client = await Client.connect(url)
    assert (await client.recv())["type"] == "welcome"
    return client


async def test_since_replays_then_goes_live(start_gateway: Start) -> None:
    gateway, url = await start_gateway(history_size=100)
    for i in range(1, 6):
        await gateway.publish("c", i)
    client = await connect(url)
    ack = await client.request({"op": "subscribe", "id": 1, "channel": "c", "since": 2})
    assert ack["recovered"] is True and ack["offset"] == 5
    await gateway.publish("c", 6)
    got = await client.messages(4)
    assert [m["offset"] for m in got] == [3, 4, 5, 6]
    assert [m["data"] for m in got] == [3, 4, 5, 6]
    await client.close()


async def test_since_older_than_history_asks_for_resync(start_gateway: Start) -> None:
    gateway, url = await start_gateway(history_size=3)
    for i in range(10):
        await gateway.publish("c", i)
    client = await connect(url)
    ack = await client.request({"op": "subscribe", "id": 1, "channel": "c", "since": 2})
    assert ack["recovered"] is False and ack["offset"] == 10
    await gateway.publish("c", "live")
    assert [m["offset"] for m in await client.messages(1)] == [11]
    await client.close()


async def test_foreign_epoch_is_not_recovered(start_gateway: Start) -> None:
    gateway, url = await start_gateway(history_size=100)
    await gateway.publish("c", 1)
    client = await connect(url)
    first = await client.request({"op": "subscribe", "id": 1, "channel": "c", "since": 0})
    assert first["recovered"] is True
    assert [m["offset"] for m in await client.messages(1)] == [1]
    await client.request({"op": "unsubscribe", "id": 2, "channel": "c"})
    same = {"op": "subscribe", "id": 3, "channel": "c", "since": 1, "epoch": first["epoch"]}
    assert (await client.request(same))["recovered"] is True
    await client.request({"op": "unsubscribe", "id": 4, "channel": "c"})
    other = {"op": "subscribe", "id": 5, "channel": "c", "since": 1, "epoch": "restarted.1"}
    assert (await client.request(other))["recovered"] is False
    await client.close()


class _Discard:
    def deliver(self, message: Message) -> None:
        pass


class SlowSubscribeHub(MemoryHub):
    """A hub whose subscribe takes time between registering the sink and reading history,
    as a networked hub's does: publishes land in that gap on both paths."""

    async def subscribe(
        self, channel: str, sink: Sink, *, since: int | None = None, epoch: str | None = None
    ) -> Replay:
        await super().subscribe(channel, sink)
        for _ in range(5):
            await trio.sleep(0.002)
        probe = _Discard()
        replay = await super().subscribe(channel, probe, since=since, epoch=epoch)
        await super().unsubscribe(channel, probe)
        return replay


async def _seam_race(start_gateway: Start, hub: Any) -> None:
    gateway, url = await start_gateway(hub=hub, history_size=10_000, batch_window_ms=2)
    total = 400
    started = trio.Event()

    async def publisher() -> None:
        for i in range(total):
            await gateway.publish("race", i)
            if i == 20:
                started.set()
            await trio.sleep(0.0005)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(publisher)
        await started.wait()
        clients = [await connect(url) for _ in range(3)]
        for n, client in enumerate(clients):
            since = 5 + n
            ack = await client.request(
                {"op": "subscribe", "id": 1, "channel": "race", "since": since}
            )
            assert ack["recovered"] is True
            got = await client.messages(total - since)
            assert [m["offset"] for m in got] == list(range(since + 1, total + 1))
            assert [m["data"] for m in got] == list(range(since, total))
    for client in clients:
        await client.close()


async def test_seam_race_memory_hub(start_gateway: Start) -> None:
    await _seam_race(start_gateway, MemoryHub(10_000, 300.0, clock=trio.current_time))


async def test_seam_race_hub_that_yields_during_subscribe(start_gateway: Start) -> None:
    await _seam_race(start_gateway, SlowSubscribeHub(10_000, 300.0, clock=trio.current_time))
