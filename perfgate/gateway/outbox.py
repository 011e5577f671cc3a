"""Outgoing-queue accounting and batching decisions: pure, time passed in.

Each connection's outgoing queue is a bounded trio memory channel (count) plus the
:class:`ByteBudget` below (bytes). Channel messages are *droppable*: over budget they are
dropped and counted, and the client sees the offset gap. Control frames (acks, errors)
are not dropped; they are few, and produced only by the connection's own reader.

A client that stays over budget for ``grace_s`` is a slow consumer (closed with 4008).
"Stays over" has hysteresis: the clock only resets once the queue has drained below half
the budget, so a client that reads a trickle but never catches up is still closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from perfgate.broker import Message
from perfgate.gateway import protocol


class ByteBudget:
    __slots__ = ("dropped", "grace_s", "limit_bytes", "over_since", "peak_bytes", "queued_bytes")

    def __init__(self, limit_bytes: int, grace_s: float) -> None:
        self.limit_bytes = limit_bytes
        self.grace_s = grace_s
        self.queued_bytes = 0
        self.peak_bytes = 0
        self.dropped = 0
        self.over_since: float | None = None

    def try_reserve(self, size: int, now: float) -> bool:
        """Reserve ``size`` bytes for a droppable message; False (and a counted drop) if
        that would exceed the budget."""
        if self.queued_bytes + size > self.limit_bytes:
            self.dropped += 1
            if self.over_since is None:
                self.over_since = now
            return False
        self._add(size)
        return True

    def force_reserve(self, size: int) -> None:
        """Account for a frame that must not be dropped."""
        self._add(size)

    def _add(self, size: int) -> None:
        self.queued_bytes += size
        if self.queued_bytes > self.peak_bytes:
            self.peak_bytes = self.queued_bytes

    def release(self, size: int) -> None:
        """``size`` bytes left the queue (sent, or discarded at close)."""
        self.queued_bytes -= size
        if self.queued_bytes * 2 < self.limit_bytes:
            self.over_since = None

    def drop(self, now: float) -> None:
        """Count a drop decided elsewhere (the count-bounded channel was full)."""
        self.dropped += 1
        if self.over_since is None:
            self.over_since = now

    def is_slow(self, now: float) -> bool:
        return self.over_since is not None and now - self.over_since >= self.grace_s


class BatchPlan:
    """When to flush a batch of channel messages.

    ``window_s == 0`` disables batching: every message is its own frame. Otherwise a batch
    opens with its first message and is flushed ``window_s`` later, or at ``max_messages``,
    or at once when a ``high`` priority message joins it.
    """

    __slots__ = ("max_messages", "window_s")

    def __init__(self, window_s: float, max_messages: int) -> None:
        self.window_s = window_s
        self.max_messages = max_messages

    @property
    def enabled(self) -> bool:
        return self.window_s > 0 and self.max_messages > 1

    def flush_now(self, batch_len: int, last: Message) -> bool:
        return not self.enabled or batch_len >= self.max_messages or last.priority == "high"

    def deadline(self, opened_at: float) -> float:
        return opened_at + self.window_s


def plan_frames(items: Sequence[Message | str], plan: BatchPlan) -> tuple[list[str], int, int, int]:
    """Turn queued items (channel messages and encoded control frames, in queue order)
    into wire frames, preserving order.

    With batching on, each run of consecutive messages becomes ``batch`` frames of at most
    ``plan.max_messages`` (a lone message stays a ``message`` frame); with it off, every
    message is its own frame. Returns ``(frames, reserved_bytes, messages, batched)``:
    ``reserved_bytes`` is what the items held of the byte budget, ``batched`` how many
    messages went out inside ``batch`` frames.
    """
    frames: list[str] = []
    reserved = messages = batched = 0
    run: list[Message] = []
    limit = plan.max_messages if plan.enabled else 1

    def flush() -> None:
        nonlocal batched
        if run:
            frame, count = encode(run)
            frames.append(frame)
            if count > 1:
                batched += count
            run.clear()

    for item in items:
        if isinstance(item, str):
            flush()
            frames.append(item)
            reserved += len(item)
            continue
        reserved += len(protocol.message_frame(item))
        messages += 1
        run.append(item)
        if len(run) >= limit:
            flush()
    flush()
    return frames, reserved, messages, batched


def encode(messages: Iterable[Message]) -> tuple[str, int]:
    """One wire frame for ``messages`` (a lone ``message`` frame, or a ``batch``) and the
    number of messages in it. Each message's own frame is encoded once and shared."""
    frames = [protocol.message_frame(m) for m in messages]
    if len(frames) == 1:
        return frames[0], 1
    return protocol.batch_frame(frames), len(frames)
