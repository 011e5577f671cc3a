from perfgate.broker import MemoryHub, Message


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
