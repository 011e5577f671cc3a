"""Batching: a window coalesces messages into one frame; high priority and window 0 don't."""

from tests.gateway.conftest import Start
from tests.gateway.wsclient import Client


async def subscribed(url: str) -> Client:
    client = await Client.connect(url)
    await client.recv()
    await client.request({"op": "subscribe", "id": 0, "channel": "c"})
    return client


async def test_messages_within_the_window_share_a_frame(start_gateway: Start) -> None:
    gateway, url = await start_gateway(batch_window_ms=1000, batch_max=4)
    client = await subscribed(url)
    # Leading edge: the first message finds the connection quiet and goes out at once.
    await gateway.publish("c", 0)
    assert (await client.recv())["offset"] == 1
    for i in range(1, 11):
        await gateway.publish("c", i)
    frames = [await client.recv() for _ in range(3)]
    assert [f["type"] for f in frames] == ["batch", "batch", "batch"]
    assert [len(f["messages"]) for f in frames] == [4, 4, 2]
    offsets = [m["offset"] for f in frames for m in f["messages"]]
    assert offsets == list(range(2, 12))
    stats = gateway.stats()
    assert stats["batches_sent"] == 3 and stats["messages_batched"] == 10
    await client.close()


async def test_high_priority_bypasses_the_window(start_gateway: Start) -> None:
    gateway, url = await start_gateway(batch_window_ms=60_000, batch_max=100)
    client = await subscribed(url)
    await gateway.publish("c", "urgent", priority="high")
    frame = await client.recv(wait_s=5)  # would wait a minute if batched
    assert frame["type"] == "message" and frame["data"] == "urgent"
    await gateway.publish("c", "a")
    await gateway.publish("c", "b")
    await gateway.publish("c", "now", priority="high")
    frame = await client.recv(wait_s=5)
    assert frame["type"] == "batch"
    assert [m["data"] for m in frame["messages"]] == ["a", "b", "now"]
    await client.close()


async def test_window_zero_sends_every_message_alone(start_gateway: Start) -> None:
    gateway, url = await start_gateway(batch_window_ms=0)
    client = await subscribed(url)
    for i in range(20):
        await gateway.publish("c", i)
    frames = [await client.recv() for _ in range(20)]
    assert all(f["type"] == "message" for f in frames)
    assert [f["offset"] for f in frames] == list(range(1, 21))
    assert gateway.stats()["batches_sent"] == 0
    await client.close()


async def test_control_frames_keep_their_order_around_a_batch(start_gateway: Start) -> None:
    gateway, url = await start_gateway(batch_window_ms=1000, batch_max=100)
    client = await subscribed(url)
    await gateway.publish("c", 1)
    leading = await client.recv()  # the leading edge goes out alone, at once
    assert (leading["type"], leading["data"]) == ("message", 1)
    await gateway.publish("c", 2)
    await gateway.publish("c", 3)
    await client.send({"op": "ping", "id": "p"})
    # The ack was queued after the open batch: it follows it, it does not overtake it.
    first, second = await client.recv(), await client.recv()
    assert first["type"] == "batch"
    assert [m["data"] for m in first["messages"]] == [2, 3]
    assert second == {"type": "ack", "id": "p"}
    await client.close()
