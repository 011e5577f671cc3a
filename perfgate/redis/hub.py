"""The Redis hub: channels shared by every instance on one Redis (docs/architecture.md §6).

Offsets, epochs and history live in Redis (see :mod:`perfgate.redis.scripts.channels`); a publish
is one Lua script that allocates the offset, appends to the capped history stream and
``PUBLISH``es, so any instance may publish and offsets still increase by one per channel.
Concurrent publishes (and subscribes' syncs) are sent as one batched script call
(:mod:`perfgate.redis.coalesce`), in the order they were made.

Each instance holds one pub/sub connection with one pattern subscription (all of this
deployment's channels) and delivers each message to its local sinks. A pattern costs every
instance every message; per-channel subscriptions would save that at the price of a
subscribe round trip on each first local subscriber, and is a later optimisation.

:meth:`RedisHub.run` supervises that connection: on loss it marks the dependency ``redis``
down in :class:`~perfgate.readiness.Readiness` (``/readyz`` 503, submits 503) and reconnects
with backoff; on reconnect it catches every locally subscribed channel up from the history
stream, so a subscriber sees no gap for what history still holds.

The client is ``coredis`` (anyio, so it runs on trio). Its pub/sub object buffers received
messages in an unbounded anyio stream; we drain it as fast as it fills, synchronously into
sinks that never block, so it stays short.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import coredis
import trio

from perfgate.broker._history import DEFAULT_HISTORY_BYTES, Message, Replay
from perfgate.broker._hub import Sink
from perfgate.errors import TooManyChannels, Unavailable
from perfgate.priorities import PRIORITIES
from perfgate.readiness import Readiness
from perfgate.redis.client import (
    DEPENDENCY,
    RETRY_AFTER_S,
    Backoff,
    first_leaf,
    is_redis_failure,
    redis_unavailable,
)
from perfgate.redis.coalesce import Coalescer
from perfgate.redis.codec import decode_entries, decode_payload, encode_data
from perfgate.redis.keys import DEFAULT_PREFIX, Keys
from perfgate.redis.replay import channel_ttl_s, replay_after
from perfgate.redis.scripts.channels import PUBLISH_MANY_LUA, SYNC_MANY_LUA

log = logging.getLogger("perfgate.broker")


class RedisHub:
    """A :class:`~perfgate.broker.Hub` shared through Redis.

    ``client`` is an entered coredis client (:func:`~perfgate.redis.client.open_redis`); start
    ``await nursery.start(hub.run)`` before use: it returns once the pub/sub connection is up.
    ``publish`` and ``subscribe`` raise :class:`~perfgate.errors.Unavailable` while Redis is
    unreachable; ``unsubscribe`` is local and never fails. Sinks are called from ``run``'s
    task, never from the publisher's (a publisher's own message comes back through Redis).
    """

    def __init__(
        self,
        client: coredis.Redis[str],
        *,
        history_size: int = 1000,
        history_ttl_s: float = 300.0,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        max_channels: int = 50_000,
        readiness: Readiness | None = None,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
    ) -> None:
        self._client = client
        self._history_size = history_size
        self._history_ttl_s = history_ttl_s
        self._history_bytes = history_bytes
        self._max_channels = max_channels
        self._full_logged = False
        self.refused = 0
        self._channel_ttl_s = channel_ttl_s(history_ttl_s)
        self._readiness = readiness
        self._keys = Keys(prefix)
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._publish_script = client.register_script(PUBLISH_MANY_LUA)
        #: Concurrent publishes go to Redis as one script call (perfgate/redis/coalesce.py).
        self._publishes: Coalescer[tuple[str, str, str, str], int] = Coalescer(self._publish_batch)
        self._sync_script = client.register_script(SYNC_MANY_LUA)
        self._syncs: Coalescer[tuple[str, int, int], Any] = Coalescer(self._sync_batch)
        self._sinks: dict[str, dict[Sink, None]] = {}
        #: Per locally subscribed channel: the highest offset delivered here.
        self._seen: dict[str, int] = {}
        self.connected = False
        self.published = 0
        self.delivered = 0
        self.received = 0
        self.reconnects = 0
        self.caught_up = 0
        self.malformed = 0

    # -- the Hub protocol -----------------------------------------------------------------

    async def publish(self, channel: str, data: Any, *, priority: str = "normal") -> int:
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")
        body = encode_data(data)
        with redis_unavailable("publish"):
            offset = await self._publishes.call((channel, priority, repr(self._clock()), body))
        self.published += 1
        return offset

    async def _publish_batch(self, messages: Sequence[tuple[str, str, str, str]]) -> list[int]:
        """One ``PUBLISH_MANY`` for ``(channel, priority, published_at, body)`` messages: their
        offsets, in order."""
        keys = self._keys
        names: list[str] = []
        args: list[Any] = [
            self._history_size,
            int(self._history_ttl_s * 1000),
            int(self._channel_ttl_s * 1000),
            self._history_bytes,
        ]
        for channel, priority, published_at, body in messages:
            names += [keys.meta(channel), keys.history(channel)]
            args += [keys.pubsub(channel), secrets.token_hex(6), priority, published_at, body]
        offsets: Any = await self._publish_script(keys=names, args=args)
        return [int(offset) for offset in offsets]

    async def subscribe(
        self, channel: str, sink: Sink, *, since: int | None = None, epoch: str | None = None
    ) -> Replay:
        if channel not in self._sinks and len(self._sinks) >= self._max_channels:
            self._refuse()
        sinks = self._sinks.setdefault(channel, {})
        sinks[sink] = None
        self._seen.setdefault(channel, 0)
        try:
            if not self.connected:
                raise Unavailable("subscribe: redis unavailable", retry_after_s=RETRY_AFTER_S)
            # The pattern subscription is live (connected), and the sink is registered: what
            # is published after the script runs reaches the sink; what before, the replay.
            channel_epoch, offset, retained = await self._sync(
                channel, since=-1 if since is None else since, floor=0
            )
        except BaseException:
            self._remove(channel, sink)
            raise
        self._seen[channel] = max(self._seen.get(channel, 0), offset)
        return replay_after(
            since=since,
            epoch=epoch,
            channel_epoch=channel_epoch,
            channel_offset=offset,
            retained=retained,
            now=self._clock(),
            history_ttl_s=self._history_ttl_s,
        )

    async def unsubscribe(self, channel: str, sink: Sink) -> None:
        self._remove(channel, sink)

    def _remove(self, channel: str, sink: Sink) -> None:
        sinks = self._sinks.get(channel)
        if sinks is None:
            return
        sinks.pop(sink, None)
        if not sinks:
            del self._sinks[channel]
            self._seen.pop(channel, None)
            if self._full_logged and len(self._sinks) < self._max_channels:
                self._full_logged = False
                log.info("subscribed channels below max_channels again (%d)", len(self._sinks))

    def _refuse(self) -> None:
        """In-process state here is per locally subscribed channel (history lives in Redis,
        bounded and expiring there), so ``max_channels`` caps those."""
        self.refused += 1
        if not self._full_logged:
            self._full_logged = True
            log.warning("refusing new channels: max_channels (%d) reached", self._max_channels)
        raise TooManyChannels(
            f"too many channels: the server holds max_channels ({self._max_channels}) "
            "subscribed channels; retry once some are unsubscribed",
            retry_after_s=RETRY_AFTER_S,
        )

    @property
    def clock(self) -> Callable[[], float]:
        """The clock of ``Message.published_at`` (to measure delivery delay against)."""
        return self._clock

    def stats(self) -> dict[str, Any]:
        return {
            "backend": "redis",
            "connected": self.connected,
            "subscribed_channels": len(self._sinks),
            "subscriptions": sum(len(s) for s in self._sinks.values()),
            "refused_channels": self.refused,
            "published": self.published,
            "received": self.received,
            "delivered": self.delivered,
            "caught_up": self.caught_up,
            "reconnects": self.reconnects,
            "malformed": self.malformed,
        }

    # -- Redis calls ----------------------------------------------------------------------

    async def _sync(
        self, channel: str, *, since: int, floor: int
    ) -> tuple[str, int, list[Message]]:
        with redis_unavailable("subscribe"):
            reply = await self._syncs.call((channel, since, floor))
        channel_epoch, offset, entries = reply
        return str(channel_epoch), int(offset), decode_entries(channel, entries)

    async def _sync_batch(self, syncs: Sequence[tuple[str, int, int]]) -> list[Any]:
        """One ``SYNC_MANY`` for ``(channel, since, floor)`` syncs: the reply per channel."""
        keys = self._keys
        names: list[str] = []
        args: list[Any] = [int(self._channel_ttl_s * 1000), max(1, self._history_size)]
        for channel, since, floor in syncs:
            names += [keys.meta(channel), keys.history(channel)]
            args += [secrets.token_hex(6), since, floor]
        replies: Any = await self._sync_script(keys=names, args=args)
        return list(replies)

    # -- the connection supervisor --------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the pub/sub connection until cancelled, reconnecting with backoff.

        ``task_status.started()`` once the first connection is up (until then the dependency
        is down). Each reconnect catches local subscribers up from history. Cancellation
        closes the connection; nothing else needs cleaning up.
        """
        started = False
        self._mark(False)
        while True:
            try:
                async with self._client.pubsub(
                    retry_policy=None, ignore_subscribe_messages=True
                ) as pubsub:
                    await pubsub.psubscribe(self._keys.pubsub_pattern)
                    await self._catch_up()
                    self._mark(True)
                    self._backoff.reset()
                    if not started:
                        started = True
                        task_status.started()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._keep_alive)
                        await self._pump(pubsub)
            except BaseException as exc:
                if not is_redis_failure(exc):
                    raise
                was_connected = self.connected
                self._mark(False)
                if was_connected:
                    self.reconnects += 1
                    log.warning("redis pub/sub connection lost: %s", first_leaf(exc))
            delay = self._backoff.next()
            log.info("reconnecting to redis in %.1fs", delay)
            await trio.sleep(delay)

    async def _pump(self, pubsub: Any) -> None:
        keys = self._keys
        while True:
            message = await pubsub.get_message()
            if message is None or message.get("type") != "pmessage":
                continue
            self.received += 1
            channel = keys.channel_of(str(message["channel"]))
            if channel is None or channel not in self._sinks:
                continue
            try:
                decoded = decode_payload(channel, str(message["data"]))
            except ValueError:
                self.malformed += 1
                continue
            self._deliver(decoded)

    def _deliver(self, message: Message) -> None:
        sinks = self._sinks.get(message.channel)
        if not sinks:
            return
        if message.offset > self._seen.get(message.channel, 0):
            self._seen[message.channel] = message.offset
        for sink in tuple(sinks):  # a sink may unsubscribe while we deliver
            sink.deliver(message)
        self.delivered += len(sinks)

    async def _catch_up(self) -> None:
        """After (re)connecting: for each local channel, deliver what history holds after the
        last offset seen here, and keep offsets from restarting below it if Redis lost the
        channel (see ``SYNC_MANY_LUA``)."""
        for channel in list(self._sinks):
            seen = self._seen.get(channel, 0)
            _epoch, _offset, retained = await self._sync(channel, since=seen, floor=seen)
            for message in retained:
                if message.offset > self._seen.get(channel, 0):
                    self.caught_up += 1
                    self._deliver(message)

    async def _keep_alive(self) -> None:
        """Refresh the TTL of every locally subscribed channel's offset and epoch, so that a
        quiet channel with subscribers keeps its epoch (and its offsets never restart)."""
        while True:
            await trio.sleep(self._channel_ttl_s / 4)
            for channel in list(self._sinks):
                seen = self._seen.get(channel, 0)
                await self._sync(channel, since=-1, floor=seen)

    def _mark(self, up: bool) -> None:
        self.connected = up
        if self._readiness is None:
            return
        if up:
            self._readiness.dependencies_down.discard(DEPENDENCY)
        else:
            self._readiness.dependencies_down.add(DEPENDENCY)


__all__ = ["RedisHub"]
