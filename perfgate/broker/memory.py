"""The in-process hub: channel histories in memory, synchronous fan-out to sinks."""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import trio

from perfgate.broker._history import DEFAULT_HISTORY_BYTES, Replay
from perfgate.broker._hub import Sink
from perfgate.broker._table import ChannelTable, HistoryLimits
from perfgate.config import GatewayConfig
from perfgate.errors import TooManyChannels
from perfgate.priorities import PRIORITIES

log = logging.getLogger("perfgate.broker")

#: Channels the server itself publishes to (job events, system stats): never refused for
#: ``max_channels``, since the job queue bounds how many there are. Clients cannot publish
#: there (see perfgate.gateway.channels); a client's subscribe to them is capped as usual.
SERVER_PREFIXES = ("jobs:", "$sys:")


class MemoryHub:
    """A :class:`~perfgate.broker.Hub` for one process.

    Memory is bounded by configuration (see :mod:`perfgate.broker._table`): per channel
    ``history_size`` messages and ``history_bytes`` bytes no older than ``history_ttl_s``,
    ``history_total_bytes`` over all channels, at most ``max_channels`` channels. A channel
    with no subscribers and no retained history is forgotten, so the number of channels
    follows the traffic, not the channel names ever seen: :meth:`run` sweeps for expired
    ones. Its ``epoch`` changes when it is forgotten, and on every new hub.

    None of the async methods checkpoints: ``publish`` and ``subscribe`` are atomic with
    respect to each other, and ``publish`` delivers to every sink before it returns.
    """

    def __init__(
        self,
        history_size: int = 1000,
        history_ttl_s: float = 300.0,
        *,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        history_total_bytes: int = 64 * 1_048_576,
        max_channels: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = HistoryLimits(
            history_size, history_ttl_s, history_bytes, history_total_bytes, max_channels
        )
        self._clock = clock
        self._table = ChannelTable(self.limits, secrets.token_hex(4))
        self._sinks: dict[str, dict[Sink, None]] = {}
        self._full_logged = False
        self.published = 0
        self.delivered = 0

    @classmethod
    def from_config(
        cls, config: GatewayConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> MemoryHub:
        """A hub with the bounds of ``[gateway]``."""
        return cls(
            config.history_size,
            config.history_ttl_s,
            history_bytes=config.history_bytes,
            history_total_bytes=config.history_total_bytes,
            max_channels=config.max_channels,
            clock=clock,
        )

    def publish_nowait(self, channel: str, data: Any, *, priority: str = "normal") -> int:
        """Synchronous :meth:`publish`, for callers outside an async context."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")
        with self._refusals():
            message = self._table.append(
                channel,
                data,
                priority,
                self._clock(),
                self._sinks,
                capped=not channel.startswith(SERVER_PREFIXES),
            )
        self.published += 1
        sinks = self._sinks.get(channel)
        if sinks:
            # Copy: a sink may unsubscribe (close its connection) while we deliver.
            for sink in tuple(sinks):
                sink.deliver(message)
            self.delivered += len(sinks)
        return message.offset

    async def publish(self, channel: str, data: Any, *, priority: str = "normal") -> int:
        return self.publish_nowait(channel, data, priority=priority)

    async def subscribe(
        self, channel: str, sink: Sink, *, since: int | None = None, epoch: str | None = None
    ) -> Replay:
        now = self._clock()
        with self._refusals():
            self._table.open(channel, now, self._sinks)
        self._sinks.setdefault(channel, {})[sink] = None
        return self._table.replay(channel, since, epoch, now)

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
            self._table.release(channel, self._clock())

    def sweep(self) -> int:
        """Forget the channels whose history has expired and that nobody subscribes to;
        return how many. :meth:`run` calls it on a timer."""
        forgotten = self._table.sweep(self._clock(), self._sinks)
        if self._full_logged and len(self._table) < self.limits.max_channels:
            self._full_logged = False
            log.info("channels below max_channels again (%d)", len(self._table))
        return forgotten

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sweep expired channels every ``sweep_interval_s`` until cancelled. Started with
        ``await nursery.start(hub.run)``; a hub that is never run still forgets a channel
        when its last subscriber leaves or when ``max_channels`` is reached."""
        task_status.started()
        while True:
            await trio.sleep(self.limits.sweep_interval_s)
            self.sweep()

    @contextlib.contextmanager
    def _refusals(self) -> Iterator[None]:
        """Log the first refusal of a spell at the cap (one line, not one per request);
        a sweep that makes room ends the spell."""
        try:
            yield
        except TooManyChannels:
            if not self._full_logged:
                self._full_logged = True
                log.warning(
                    "refusing new channels: max_channels (%d) reached", self.limits.max_channels
                )
            raise

    @property
    def clock(self) -> Callable[[], float]:
        """The clock of ``Message.published_at`` (to measure delivery delay against)."""
        return self._clock

    def stats(self) -> dict[str, Any]:
        table = self._table
        return {
            "channels": len(table),
            "subscribed_channels": len(self._sinks),
            "subscriptions": sum(len(s) for s in self._sinks.values()),
            "retained_messages": table.retained_messages(),
            "retained_bytes": table.retained_bytes,
            "forgotten_channels": table.forgotten,
            "refused_channels": table.refused,
            "published": self.published,
            "delivered": self.delivered,
        }
