"""RedisHub against a real redis-server: two hubs (two clients) stand for two instances."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from perfgate.broker import Message
from perfgate.errors import TooManyChannels, Unavailable
from perfgate.readiness import Readiness
from perfgate.redis.client import Backoff, open_redis
from perfgate.redis.hub import RedisHub
from perfgate.redis.keys import Keys
from tests.redis_server import RedisServer, _command


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.changed = trio.Event()

    def deliver(self, message: Message) -> None:
        self.messages.append(message)
        self.changed.set()
        self.changed = trio.Event()

    @property
    def offsets(self) -> list[int]:
        return [m.offset for m in self.messages]

    async def wait_for(self, predicate: Callable[[list[Message]], bool]) -> None:
        with trio.fail_after(10):
            while not predicate(self.messages):
                await self.changed.wait()


@asynccontextmanager
async def running_hub(url: str, **kwargs: Any) -> AsyncIterator[RedisHub]:
    async with open_redis(url) as client, trio.open_nursery() as nursery:
        hub = RedisHub(client, **kwargs)
        await nursery.start(hub.run)
        yield hub
        nursery.cancel_scope.cancel()


async def until(predicate: Callable[[], bool]) -> None:
    with trio.fail_after(15):
        while not predicate():  # noqa: ASYNC110 - polling foreign state on purpose
            await trio.sleep(0.02)


async def test_fan_out_across_hubs_with_shared_offsets(redis_url: str) -> None:
    async with running_hub(redis_url) as a, running_hub(redis_url) as b:
        on_a, on_b = Recorder(), Recorder()
        replay = await b.subscribe("room", on_b)
        assert (replay.offset, replay.recovered) == (0, True)
        await a.subscribe("room", on_a)
        offsets = []
        for i in range(10):
            hub = a if i % 2 else b
            offsets.append(await hub.publish("room", {"i": i}, priority="high"))
        assert offsets == list(range(1, 11))
        for recorder in (on_a, on_b):
            await recorder.wait_for(lambda ms: len(ms) == 10)
            assert recorder.offsets == offsets
            assert [m.data for m in recorder.messages] == [{"i": i} for i in range(10)]
            assert recorder.messages[0].priority == "high"
        await b.unsubscribe("room", on_b)
        await b.unsubscribe("room", on_b)  # idempotent
        assert await a.publish("room", "after") == 11
        await on_a.wait_for(lambda ms: len(ms) == 11)
        assert len(on_b.messages) == 10
        assert b.stats()["subscriptions"] == 0 and a.stats()["published"] == 6


async def test_since_replays_from_redis_history_on_another_hub(redis_url: str) -> None:
    async with (
        running_hub(redis_url, history_size=5) as a,
        running_hub(redis_url, history_size=5) as b,
    ):
        first = await a.subscribe("news", Recorder())
        for i in range(8):
            await a.publish("news", i)
        replay = await b.subscribe("news", Recorder(), since=5, epoch=first.epoch)
        assert replay.recovered and replay.epoch == first.epoch and replay.offset == 8
        assert [(m.offset, m.data) for m in replay.messages] == [(6, 5), (7, 6), (8, 7)]
        # 2 was trimmed (MAXLEN 5 keeps 4..8): the client must resync.
        assert not (await b.subscribe("news", Recorder(), since=2)).recovered
        assert not (await b.subscribe("news", Recorder(), since=3, epoch="old")).recovered
        assert not (await b.subscribe("news", Recorder(), since=9)).recovered
        caught_up = await b.subscribe("news", Recorder(), since=8)
        assert caught_up.recovered and caught_up.messages == ()


async def test_replay_and_live_meet_without_gap_while_publishing(redis_url: str) -> None:
    async with running_hub(redis_url) as a, running_hub(redis_url) as b:
        total = 300
        done = trio.Event()

        async def publish_all() -> None:
            for i in range(total):
                await a.publish("busy", i)
            done.set()

        live = Recorder()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(publish_all)
            with trio.fail_after(10):
                while a.published < 100:  # noqa: ASYNC110
                    await trio.sleep(0.001)
            replay = await b.subscribe("busy", live, since=50)
            await done.wait()
        await live.wait_for(lambda ms: bool(ms) and ms[-1].offset == total)
        assert replay.recovered
        replayed = [m.offset for m in replay.messages]
        assert replayed == list(range(51, replay.offset + 1))
        seen = set(replayed) | {o for o in live.offsets if o > replay.offset}
        assert sorted(seen) == list(range(51, total + 1))


async def test_unavailable_while_redis_is_down_then_recovers(
    redis_url: str, redis_server: RedisServer
) -> None:
    readiness = Readiness()
    fast = Backoff(initial_s=0.05, max_s=0.2)
    async with running_hub(redis_url, readiness=readiness, backoff=fast) as hub:
        recorder = Recorder()
        before = await hub.subscribe("ch", recorder)
        for i in range(3):
            await hub.publish("ch", i)
        await recorder.wait_for(lambda ms: len(ms) == 3)
        assert "redis" not in readiness.dependencies_down

        redis_server.stop()
        await until(lambda: "redis" in readiness.dependencies_down)
        with pytest.raises(Unavailable):
            await hub.publish("ch", "lost")
        with pytest.raises(Unavailable):
            await hub.subscribe("other", Recorder())
        assert hub.stats()["subscribed_channels"] == 1  # the failed subscribe left nothing

        redis_server.start()  # no persistence: the channel's offsets and epoch are gone
        await until(lambda: "redis" not in readiness.dependencies_down)
        assert hub.stats()["reconnects"] == 1
        # Offsets resume above what the live subscriber saw, under a new epoch.
        assert await hub.publish("ch", "again") == 4
        await recorder.wait_for(lambda ms: len(ms) == 4)
        after = await hub.subscribe("ch2", Recorder())
        assert after.recovered
        assert not (await hub.subscribe("ch3", Recorder(), since=2, epoch=before.epoch)).recovered


async def test_messages_missed_by_a_dropped_subscriber_are_caught_up(redis_url: str) -> None:
    slow = Backoff(initial_s=0.5, max_s=0.5)
    async with running_hub(redis_url) as a, running_hub(redis_url, backoff=slow) as b:
        recorder = Recorder()
        await b.subscribe("feed", recorder)
        await a.publish("feed", 1)
        await recorder.wait_for(lambda ms: len(ms) == 1)
        port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        await trio.to_thread.run_sync(_command, port, "CLIENT KILL TYPE pubsub")
        await until(lambda: not b.connected)
        await a.publish("feed", 2)  # b's pub/sub connection is down: only history has it
        await a.publish("feed", 3)
        await recorder.wait_for(lambda ms: len(ms) == 3)
        assert recorder.offsets == [1, 2, 3]
        assert b.stats()["caught_up"] == 2


async def test_redis_history_is_bounded_in_bytes_and_expires(redis_url: str) -> None:
    limit = 200_000
    async with (
        running_hub(redis_url, history_bytes=limit, history_ttl_s=30.0) as a,
        open_redis(redis_url) as client,
    ):
        body = "y" * 60_000
        for i in range(20):
            await a.publish("big", [i, body])
        keys = Keys()
        held = await client.hget(keys.meta("big"), "bytes")
        entries = await client.xrange(keys.history("big"))
        assert 0 < len(entries) < 20 and 0 < int(held or 0) <= limit
        assert int(held or 0) == sum(len(e.field_values["m"]) for e in entries)
        ttl_ms = await client.pttl(keys.history("big"))
        assert 0 < ttl_ms <= 30_000
        kept = len(entries)
        replay = await a.subscribe("big", Recorder(), since=20 - kept)
        assert replay.recovered and [m.offset for m in replay.messages] == list(
            range(21 - kept, 21)
        )
        assert not (await a.subscribe("big", Recorder(), since=19 - kept)).recovered
        # One message over the bound on its own is delivered to subscribers, not retained.
        await a.publish("huge", "z" * (limit + 1))
        assert await client.xlen(keys.history("huge")) == 0


async def test_redis_hub_caps_locally_subscribed_channels(redis_url: str) -> None:
    async with running_hub(redis_url, max_channels=2) as hub:
        await hub.subscribe("a", Recorder())
        await hub.subscribe("b", Recorder())
        await hub.subscribe("a", Recorder())  # an existing channel is never refused
        with pytest.raises(TooManyChannels, match=r"max_channels \(2\)"):
            await hub.subscribe("c", Recorder())
        assert hub.stats()["subscribed_channels"] == 2


async def test_concurrent_publishes_share_one_script_call_and_keep_each_channel_s_order(
    redis_url: str,
) -> None:
    async with running_hub(redis_url) as a, running_hub(redis_url) as b:
        seen = {name: Recorder() for name in ("c1", "c2")}
        for name, recorder in seen.items():
            await b.subscribe(name, recorder)
        offsets: dict[tuple[str, int], int] = {}

        async def publish(name: str, n: int) -> None:
            offsets[name, n] = await a.publish(name, {"n": n})

        async with trio.open_nursery() as nursery:
            for n in range(10):
                for name in seen:
                    nursery.start_soon(publish, name, n)
        # 20 publishes, started together: far fewer script calls than publishes.
        assert a._publishes.calls == 20 and a._publishes.batches <= 3
        for name, recorder in seen.items():
            assert sorted(offsets[name, n] for n in range(10)) == list(range(1, 11))
            await recorder.wait_for(lambda messages: len(messages) == 10)
            assert recorder.offsets == list(range(1, 11))
            by_offset = {offsets[name, n]: n for n in range(10)}
            assert [m.data["n"] for m in recorder.messages] == [by_offset[o] for o in range(1, 11)]
