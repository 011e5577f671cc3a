from typing import Any

import pytest
import trio

from perfgate.broker import MemoryHub, Message
from perfgate.errors import TooManyChannels


class Sink:
    def __init__(self) -> None:
        self.got: list[Message] = []

    def deliver(self, message: Message) -> None:
        self.got.append(message)


async def test_publish_fans_out_to_every_sink_once() -> None:
    hub = MemoryHub(10, 60.0)
    a, b = Sink(), Sink()
    await hub.subscribe("ch", a)
    await hub.subscribe("ch", b)
    assert await hub.publish("ch", {"n": 1}) == 1
    assert await hub.publish("other", "x") == 1
    assert [m.data for m in a.got] == [{"n": 1}]
    assert a.got[0] is b.got[0]  # shared, so it is encoded once


async def test_unsubscribe_stops_delivery() -> None:
    hub = MemoryHub(10, 60.0)
    sink = Sink()
    await hub.subscribe("ch", sink)
    await hub.unsubscribe("ch", sink)
    await hub.unsubscribe("ch", sink)  # idempotent
    await hub.publish("ch", 1)
    assert sink.got == []


async def test_subscribe_since_replays_and_reports_epoch() -> None:
    hub = MemoryHub(10, 60.0)
    for i in range(3):
        await hub.publish("ch", i)
    replay = await hub.subscribe("ch", Sink(), since=1)
    assert replay.recovered and replay.offset == 3
    assert [m.data for m in replay.messages] == [1, 2]
    again = await hub.subscribe("ch", Sink(), since=1, epoch=replay.epoch)
    assert again.recovered


async def test_a_new_hub_has_a_new_epoch() -> None:
    old, new = MemoryHub(10, 60.0), MemoryHub(10, 60.0)
    await old.publish("ch", 1)
    await new.publish("ch", 1)
    epoch = (await old.subscribe("ch", Sink())).epoch
    assert not (await new.subscribe("ch", Sink(), since=1, epoch=epoch)).recovered


async def test_idle_channels_without_history_are_forgotten() -> None:
    hub = MemoryHub(0, 60.0)
    for i in range(100):
        await hub.publish(f"ch{i}", i)
    sink = Sink()
    await hub.subscribe("x", sink)
    await hub.unsubscribe("x", sink)
    assert hub.stats()["channels"] == 0


async def test_history_is_bounded_by_size_and_age() -> None:
    now = [0.0]
    hub = MemoryHub(3, 10.0, clock=lambda: now[0])
    for i in range(10):
        await hub.publish("ch", i)
    assert hub.stats()["retained_messages"] == 3
    now[0] = 20.0
    await hub.publish("ch", "late")
    assert hub.stats()["retained_messages"] == 1


async def test_the_sweep_task_forgets_expired_one_off_channels(autojump_clock: Any) -> None:
    hub = MemoryHub(10, 60.0, clock=trio.current_time)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        for i in range(10_000):
            await hub.publish(f"once:{i}", {"i": i})
        watcher, leaver = Sink(), Sink()
        await hub.subscribe("watched", watcher)
        await hub.subscribe("once:0", leaver)
        await hub.unsubscribe("once:0", leaver)  # still has history: kept until it expires
        assert hub.stats()["channels"] == 10_001
        await trio.sleep(30.0)
        assert hub.stats()["channels"] == 10_001  # history_ttl_s has not passed
        await trio.sleep(30.0 + hub.limits.sweep_interval_s + 1.0)
        stats = hub.stats()
        assert stats["channels"] == 1 and stats["subscribed_channels"] == 1  # "watched"
        assert stats["retained_messages"] == 0 and stats["retained_bytes"] == 0
        await hub.unsubscribe("watched", watcher)
        assert hub.stats()["channels"] == 0
        nursery.cancel_scope.cancel()


async def test_a_released_channel_is_not_replayed_from_the_wrong_place(
    autojump_clock: Any,
) -> None:
    hub = MemoryHub(10, 60.0, clock=trio.current_time)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        for i in range(5):
            await hub.publish("jobs:1", i)
        sink = Sink()
        seen = await hub.subscribe("jobs:1", sink, since=0)
        assert seen.recovered and len(seen.messages) == 5
        await hub.unsubscribe("jobs:1", sink)
        await trio.sleep(60.0 + hub.limits.sweep_interval_s + 1.0)
        assert hub.stats()["channels"] == 0  # released once its history expired
        for i in range(7):
            await hub.publish("jobs:1", f"new {i}")
        stale = await hub.subscribe("jobs:1", Sink(), since=5, epoch=seen.epoch)
        assert stale.epoch != seen.epoch and not stale.recovered
        fresh = await hub.subscribe("jobs:1", Sink(), since=5, epoch=stale.epoch)
        assert fresh.recovered and [m.data for m in fresh.messages] == ["new 5", "new 6"]
        nursery.cancel_scope.cancel()


async def test_the_channel_cap_is_an_error_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = MemoryHub(10, 60.0, max_channels=2)
    await hub.publish("a", 1)
    await hub.subscribe("b", Sink())
    for _ in range(3):
        with pytest.raises(TooManyChannels, match="max_channels"):
            await hub.publish("c", 1)
        with pytest.raises(TooManyChannels):
            await hub.subscribe("c", Sink())
    assert await hub.publish("jobs:9", 1) == 1  # the server's own channels are not refused
    assert hub.stats()["subscribed_channels"] == 1  # the refused subscribe left nothing
    refusals = [r for r in caplog.records if "max_channels" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelname == "WARNING"
