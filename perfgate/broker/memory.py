"""The in-process hub: channel histories in memory, synchronous fan-out to sinks."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from perfgate.broker._history import PRIORITIES, ChannelHistory, Replay
from perfgate.broker._hub import Sink


class MemoryHub:
    """A :class:`~perfgate.broker.Hub` for one process.

    Memory is bounded by configuration: per channel, ``history_size`` messages no older
    than ``history_ttl_s``. A channel with no subscribers and no retained history is
    forgotten, so the number of channels follows the traffic, not the channel names ever
    seen. Its ``epoch`` changes when it is forgotten, and on every new hub.

    None of the async methods checkpoints: ``publish`` and ``subscribe`` are atomic with
    respect to each other, and ``publish`` delivers to every sink before it returns.
    """

    def __init__(
        self,
        history_size: int = 1000,
        history_ttl_s: float = 300.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._history_size = history_size
        self._history_ttl_s = history_ttl_s
        self._clock = clock
        self._boot = secrets.token_hex(4)
        self._generation = 0
        self._channels: dict[str, ChannelHistory] = {}
        self._sinks: dict[str, dict[Sink, None]] = {}
        self.published = 0
        self.delivered = 0

    def _history(self, channel: str) -> ChannelHistory:
        history = self._channels.get(channel)
        if history is None:
            self._generation += 1
            epoch = f"{self._boot}.{self._generation}"
            history = ChannelHistory(channel, epoch, self._history_size, self._history_ttl_s)
            self._channels[channel] = history
        return history

    def publish_nowait(self, channel: str, data: Any, *, priority: str = "normal") -> int:
        """Synchronous :meth:`publish`, for callers outside an async context."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")
        history = self._history(channel)
        message = history.append(data, priority, self._clock())
        self.published += 1
        sinks = self._sinks.get(channel)
        if sinks:
            # Copy: a sink may unsubscribe (close its connection) while we deliver.
            for sink in tuple(sinks):
                sink.deliver(message)
            self.delivered += len(sinks)
        elif not len(history) and history.offset:
            # Nobody listens and nothing is retained: keep only what a later `since`
            # needs to notice the loss, which the new epoch conveys.
            del self._channels[channel]
        return message.offset

    async def publish(self, channel: str, data: Any, *, priority: str = "normal") -> int:
        return self.publish_nowait(channel, data, priority=priority)

    async def subscribe(
        self, channel: str, sink: Sink, *, since: int | None = None, epoch: str | None = None
    ) -> Replay:
        history = self._history(channel)
        self._sinks.setdefault(channel, {})[sink] = None
        now = self._clock()
        if since is None:
            history.expire(now)
            return Replay(history.epoch, history.offset, recovered=True)
        return history.since(since, epoch, now)

    async def unsubscribe(self, channel: str, sink: Sink) -> None:
        self.unsubscribe_nowait(channel, sink)

    def unsubscribe_nowait(self, channel: str, sink: Sink) -> None:
        """Synchronous :meth:`unsubscribe`: usable in cleanup without a checkpoint."""
        sinks = self._sinks.get(channel)
        if sinks is None:
            return
        sinks.pop(sink, None)
        if not sinks:
            del self._sinks[channel]
            history = self._channels.get(channel)
            if history is not None:
                history.expire(self._clock())
                if not len(history):
                    del self._channels[channel]

    @property
    def clock(self) -> Callable[[], float]:
        """The clock of ``Message.published_at`` (to measure delivery delay against)."""
        return self._clock

    def stats(self) -> dict[str, Any]:
        return {
            "channels": len(self._channels),
            "subscribed_channels": len(self._sinks),
            "subscriptions": sum(len(s) for s in self._sinks.values()),
            "retained_messages": sum(len(h) for h in self._channels.values()),
            "published": self.published,
            "delivered": self.delivered,
        }
