"""The channels of an in-process hub, with their bounds and the sweep: pure, time passed in.

Bounds, all from ``[gateway]``: per channel ``history_size`` messages, ``history_bytes`` bytes,
none older than ``history_ttl_s``; over all channels ``history_total_bytes``; at most
``max_channels`` channels. A channel with no subscriber and nothing retained is forgotten
entirely; :meth:`ChannelTable.sweep` (run on a timer by the hub) finds those whose history
has expired, so one-off channels leave nothing behind once ``history_ttl_s`` has passed
(issue 19: 10,000 of them used to stay for the life of the process).

Forgetting a channel is safe for ``since`` recovery because of epochs: a forgotten channel
starts again at offset 1 under a new epoch (never one given out before by this hub), so a
client resuming with the old epoch is answered ``recovered: false``.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import attrs

from perfgate.broker._frame import encode_data
from perfgate.broker._history import DEFAULT_HISTORY_BYTES, ChannelHistory, Message, Replay
from perfgate.errors import TooManyChannels


@attrs.frozen
class HistoryLimits:
    size: int = 1000
    ttl_s: float = 300.0
    channel_bytes: int = DEFAULT_HISTORY_BYTES
    total_bytes: int = 64 * 1_048_576
    max_channels: int = 50_000

    @property
    def sweep_interval_s(self) -> float:
        """How often expired histories are looked for: often enough that a channel outlives
        its history by at most a quarter of ``ttl_s`` (and by at most 10 s), and never more
        than 10 times a second."""
        return max(0.1, min(self.ttl_s / 4, 10.0))


class ChannelTable:
    """Channel histories in least-recently-published order.

    The order is what makes the sweep and the total bound cheap: a channel moves to the end
    on each publish, so the channels whose history has wholly expired are at the front, and
    over the total the least recently published channels lose their oldest messages first.
    ``busy`` arguments say which channels have subscribers (those are never forgotten).
    """

    def __init__(self, limits: HistoryLimits, epoch_prefix: str) -> None:
        self.limits = limits
        self._epoch_prefix = epoch_prefix
        self._generation = 0
        self._channels: dict[str, ChannelHistory] = {}
        self.retained_bytes = 0
        self.forgotten = 0
        self.refused = 0

    def get(self, channel: str) -> ChannelHistory | None:
        return self._channels.get(channel)

    def open(
        self, channel: str, now: float, busy: Container[str], *, capped: bool = True
    ) -> ChannelHistory:
        """The channel's history, created if need be under a new epoch.

        Raises :class:`TooManyChannels` if creating it would pass ``max_channels`` even
        after a sweep (unless ``capped`` is False: the server's own job and system channels,
        which the job queue bounds)."""
        history = self._channels.get(channel)
        if history is not None:
            return history
        limits = self.limits
        if capped and len(self._channels) >= limits.max_channels:
            self.sweep(now, busy)
            if len(self._channels) >= limits.max_channels:
                self.refused += 1
                raise TooManyChannels(
                    f"too many channels: the server holds max_channels "
                    f"({limits.max_channels}); retry once idle channels expire",
                    retry_after_s=limits.sweep_interval_s,
                )
        self._generation += 1
        history = ChannelHistory(
            channel,
            f"{self._epoch_prefix}.{self._generation}",
            limits.size,
            limits.ttl_s,
            limits.channel_bytes,
        )
        self._channels[channel] = history
        return history

    def append(
        self,
        channel: str,
        data: Any,
        priority: str,
        now: float,
        busy: Container[str],
        *,
        capped: bool = True,
    ) -> Message:
        """Give ``data`` the channel's next offset and retain it within every bound.

        Raises ``ValidationError`` (data not JSON) or :class:`TooManyChannels` before any
        offset is given out or any state is created."""
        data_json = encode_data(data)
        history = self.open(channel, now, busy, capped=capped)
        # Most recently published last (a pop and an insert: O(1)).
        self._channels[channel] = self._channels.pop(channel)
        before = history.retained_bytes
        message = history.append_json(data_json, priority, now)
        self.retained_bytes += history.retained_bytes - before
        if self.retained_bytes > self.limits.total_bytes:
            self._evict_to_total()
        if not len(history) and channel not in busy:
            # Nothing retained and nobody listening (history_size 0, or one message over
            # the byte bound): nothing a later `since` could use; the new epoch says so.
            self._forget(channel)
        return message

    def replay(self, channel: str, since: int | None, epoch: str | None, now: float) -> Replay:
        """What a subscriber gets (the channel must be open)."""
        history = self._channels[channel]
        before = history.retained_bytes
        if since is None:
            history.expire(now)
            replay = Replay(history.epoch, history.offset, recovered=True)
        else:
            replay = history.since(since, epoch, now)
        self.retained_bytes += history.retained_bytes - before
        return replay

    def release(self, channel: str, now: float) -> None:
        """The channel lost its last subscriber: forget it if nothing is retained."""
        history = self._channels.get(channel)
        if history is None:
            return
        before = history.retained_bytes
        history.expire(now)
        self.retained_bytes += history.retained_bytes - before
        if not len(history):
            self._forget(channel)

    def sweep(self, now: float, busy: Container[str]) -> int:
        """Expire old messages and forget the channels left with no history and no
        subscriber; return how many were forgotten.

        Walks from the least recently published channel and stops at the first that still
        retains something: every later channel was published to more recently, so it still
        retains something too. The cost is the number of expired channels (plus idle
        subscribed ones), not the number of channels."""
        idle: list[str] = []
        for channel, history in self._channels.items():
            before = history.retained_bytes
            history.expire(now)
            self.retained_bytes += history.retained_bytes - before
            if len(history):
                break
            if channel not in busy:
                idle.append(channel)
        for channel in idle:
            self._forget(channel)
        return len(idle)

    def _evict_to_total(self) -> None:
        limit = self.limits.total_bytes
        for history in self._channels.values():
            while len(history) and self.retained_bytes > limit:
                self.retained_bytes -= history.evict_oldest()
            if self.retained_bytes <= limit:
                return

    def _forget(self, channel: str) -> None:
        del self._channels[channel]
        self.forgotten += 1

    def __len__(self) -> int:
        return len(self._channels)

    def __contains__(self, channel: object) -> bool:
        return channel in self._channels

    def retained_messages(self) -> int:
        return sum(len(h) for h in self._channels.values())
