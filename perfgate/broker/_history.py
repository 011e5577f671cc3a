"""Per-channel offsets and bounded history: pure bookkeeping, no trio, time passed in.

Offsets start at 1 and increase by one per channel. A channel keeps at most ``history_size``
messages and ``history_bytes`` bytes, none older than ``history_ttl_s``. Each channel's
history has an ``epoch``: a token that changes whenever history is lost (a new hub, or a
channel forgotten and started again), so that a client resuming with an offset from another
epoch is told to resync instead of being replayed from the wrong place.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import attrs

from perfgate.broker._frame import encode_data, header_bytes, message_wire

DEFAULT_HISTORY_BYTES = 1_048_576

#: What a retained message costs besides its frame: the Message object, its offset and time,
#: the frame's bytes header and the deque slot (measured with tracemalloc on CPython 3.11:
#: about 165 bytes, where the data, its JSON and its frame held side by side used to cost three
#: times the frame). Counted so that a byte bound also bounds a history of tiny messages.
MESSAGE_OVERHEAD_BYTES = 160


class Message:
    """One published channel message, shared by every subscriber that receives it.

    It is held once, encoded: ``wire`` is the complete WebSocket frame of its ``message``
    frame, built when it is published, so that a fan-out encodes each message once, not once
    per subscriber. ``frame`` (the JSON text) and ``data`` are derived from it on demand.
    Raises :class:`~perfgate.errors.ValidationError` if ``data`` is not JSON.
    """

    __slots__ = ("channel", "offset", "priority", "published_at", "wire")

    def __init__(
        self,
        channel: str,
        offset: int,
        data: Any,
        priority: str,
        published_at: float,
        *,
        data_json: str | None = None,
    ) -> None:
        self.channel = channel
        self.offset = offset
        self.priority = priority
        self.published_at = published_at
        if data_json is None:
            data_json = encode_data(data)
        self.wire = message_wire(channel, offset, data_json)

    @classmethod
    def from_json(
        cls, channel: str, offset: int, data_json: str, priority: str, published_at: float
    ) -> Message:
        """A message whose data is already encoded (``data_json`` is trusted to be JSON)."""
        return cls(channel, offset, None, priority, published_at, data_json=data_json)

    @property
    def payload(self) -> memoryview:
        """The UTF-8 JSON of the ``message`` frame (a view into ``wire``, not a copy)."""
        return memoryview(self.wire)[header_bytes(self.wire) :]

    @property
    def size_bytes(self) -> int:
        """The length of :attr:`payload`: what a queued message weighs."""
        return len(self.wire) - header_bytes(self.wire)

    @property
    def frame(self) -> str:
        """The ``message`` frame as text (decoded on each call: for the slow paths)."""
        return str(self.payload, "utf-8")

    @property
    def data(self) -> Any:
        """The published data (decoded on each call)."""
        return json.loads(self.frame)["data"]

    def __repr__(self) -> str:
        return f"Message({self.channel!r}, offset={self.offset}, priority={self.priority!r})"


def retained_cost(message: Message) -> int:
    """The bytes a retained message counts against the history bounds."""
    return len(message.wire) + MESSAGE_OVERHEAD_BYTES


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

    __slots__ = (
        "_bytes_limit",
        "_messages",
        "_size",
        "_ttl_s",
        "channel",
        "epoch",
        "offset",
        "retained_bytes",
    )

    def __init__(
        self,
        channel: str,
        epoch: str,
        history_size: int,
        history_ttl_s: float,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
    ) -> None:
        self.channel = channel
        self.epoch = epoch
        self.offset = 0
        self.retained_bytes = 0
        self._size = history_size
        self._ttl_s = history_ttl_s
        self._bytes_limit = history_bytes
        self._messages: deque[Message] = deque()

    def append(self, data: Any, priority: str, now: float) -> Message:
        """Assign the next offset to ``data`` and retain it (evicting the oldest).

        Raises :class:`~perfgate.errors.ValidationError`, with no offset used, if ``data``
        is not JSON."""
        return self.append_json(encode_data(data), priority, now)

    def append_json(self, data_json: str, priority: str, now: float) -> Message:
        """:meth:`append` for data already encoded by :func:`encode_data`."""
        message = Message.from_json(self.channel, self.offset + 1, data_json, priority, now)
        self.offset = message.offset
        messages = self._messages
        if self._size:
            messages.append(message)
            self.retained_bytes += retained_cost(message)
            # A message over the byte bound on its own is not retained either.
            while messages and (
                len(messages) > self._size or self.retained_bytes > self._bytes_limit
            ):
                self.evict_oldest()
        self.expire(now)
        return message

    def evict_oldest(self) -> int:
        """Forget the oldest retained message; return the bytes that freed (0 if none)."""
        if not self._messages:
            return 0
        cost = retained_cost(self._messages.popleft())
        self.retained_bytes -= cost
        return cost

    def expire(self, now: float) -> None:
        """Forget messages older than the age limit."""
        cutoff = now - self._ttl_s
        messages = self._messages
        while messages and messages[0].published_at < cutoff:
            self.evict_oldest()

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
