"""Per-channel offsets and bounded history: pure bookkeeping, no trio, time passed in.

Offsets start at 1 and increase by one per channel. A channel keeps at most ``history_size``
messages, none older than ``history_ttl_s``. Each channel's history has an ``epoch``: a
token that changes whenever history is lost (here: whenever the hub is new), so that a
client resuming with an offset from another epoch is told to resync instead of being
replayed from the wrong place.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs

PRIORITIES = ("high", "normal", "low")


class Message:
    """One published channel message, shared by every subscriber that receives it.

    ``frame`` and ``wire`` are cache slots for the encoded forms (the JSON text, and the
    WebSocket frame that carries it): the gateway fills them on first use so that a
    fan-out encodes each message once, not once per subscriber.
    """

    __slots__ = ("channel", "data", "frame", "offset", "priority", "published_at", "wire")

    def __init__(
        self, channel: str, offset: int, data: Any, priority: str, published_at: float
    ) -> None:
        self.channel = channel
        self.offset = offset
        self.data = data
        self.priority = priority
        self.published_at = published_at
        self.frame: str | None = None
        self.wire: bytes | None = None

    def __repr__(self) -> str:
        return f"Message({self.channel!r}, offset={self.offset}, priority={self.priority!r})"


@attrs.frozen
class Replay:
    """What a subscriber with ``since`` gets: the messages after it, or ``recovered=False``."""

    epoch: str
    offset: int
    """The channel's last offset at the time of the call (0: nothing published yet)."""
    recovered: bool
    messages: tuple[Message, ...] = ()


class ChannelHistory:
    """Offsets and retained messages of one channel. Not thread-safe; never blocks."""

    __slots__ = ("_messages", "_size", "_ttl_s", "channel", "epoch", "offset")

    def __init__(self, channel: str, epoch: str, history_size: int, history_ttl_s: float) -> None:
        self.channel = channel
        self.epoch = epoch
        self.offset = 0
        self._size = history_size
        self._ttl_s = history_ttl_s
        self._messages: deque[Message] = deque(maxlen=history_size or None)

    def append(self, data: Any, priority: str, now: float) -> Message:
        """Assign the next offset to ``data`` and retain it (evicting the oldest)."""
        self.offset += 1
        message = Message(self.channel, self.offset, data, priority, now)
        if self._size:
            self._messages.append(message)
        self.expire(now)
        return message

    def expire(self, now: float) -> None:
        """Forget messages older than the age limit."""
        cutoff = now - self._ttl_s
        messages = self._messages
        while messages and messages[0].published_at < cutoff:
            messages.popleft()

    def since(self, offset: int, epoch: str | None, now: float) -> Replay:
        """The retained messages after ``offset``, if history still covers them.

        Not recovered when ``epoch`` is given and is not this history's, when ``offset`` is
        ahead of the channel (it came from another history), or when messages after
        ``offset`` have already been evicted (a gap the client must resync across).
        """
        self.expire(now)
        if (epoch is not None and epoch != self.epoch) or offset > self.offset or offset < 0:
            return Replay(self.epoch, self.offset, recovered=False)
        if offset == self.offset:
            return Replay(self.epoch, self.offset, recovered=True)
        first_kept = self._messages[0].offset if self._messages else self.offset + 1
        if first_kept > offset + 1:
            return Replay(self.epoch, self.offset, recovered=False)
        skip = offset + 1 - first_kept
        kept = tuple(self._messages)[skip:]
        return Replay(self.epoch, self.offset, recovered=True, messages=kept)

    def __len__(self) -> int:
        return len(self._messages)
