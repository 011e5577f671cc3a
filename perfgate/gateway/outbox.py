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

from perfgate.broker import Message, _frame
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
    """When to write queued channel messages: the one batching rule (:meth:`send_at`).

    ``window_s == 0`` (or ``max_messages <= 1``) disables batching: every message is its
    own frame, written at once. Otherwise batching is a throttle with a leading edge.
    """

    __slots__ = ("max_messages", "window_s")

    def __init__(self, window_s: float, max_messages: int) -> None:
        self.window_s = window_s
        self.max_messages = max_messages

    @property
    def enabled(self) -> bool:
        return self.window_s > 0 and self.max_messages > 1

    def send_at(self, now: float, last_sent_at: float, queued: int, urgent: bool) -> float:
        """When to write what is queued (``queued`` channel messages; ``urgent``: a control
        frame or a ``high`` message is among them): ``now``, or the end of the window.

        A message that finds the connection quiet (nothing sent for ``window_s``) goes at
        once, so batching adds no latency at low rates; messages arriving within the window
        after a write wait for its end and go together, unless the batch is full or urgent.
        Used by the publisher's inline write, by the writer task, and nowhere else."""
        if urgent or not self.enabled or queued >= self.max_messages:
            return now
        return max(now, last_sent_at + self.window_s)


def plan_frames(
    items: Sequence[Message | str], plan: BatchPlan, frames_cache: FrameCache | None = None
) -> tuple[list[str | bytes], int, int, int, int]:
    """Turn queued items (channel messages and encoded control frames, in queue order)
    into wire frames, preserving order.

    With batching on, each run of consecutive messages becomes ``batch`` frames of at most
    ``plan.max_messages`` (a lone message stays a ``message`` frame); with it off, every
    message is its own frame. Control frames stay ``str``. Message frames are ``str`` too,
    unless ``frames_cache`` is given: then they are complete WebSocket frames (``bytes``),
    shared with every other connection that sends the same messages. Returns
    ``(frames, reserved_bytes, messages, batched, batches)``: ``reserved_bytes`` is what the
    items held of the byte budget, ``batched`` how many messages went out inside the
    ``batches`` ``batch`` frames.
    """
    frames: list[str | bytes] = []
    reserved = messages = batched = batches = 0
    run: list[Message] = []
    limit = plan.max_messages if plan.enabled else 1

    def flush() -> None:
        nonlocal batched, batches
        if not run:
            return
        count = len(run)
        if frames_cache is None:
            frames.append(encode(run)[0])
        elif count == 1:
            frames.append(frames_cache.message(run[0]))
        else:
            frames.append(frames_cache.batch(run))
        if count > 1:
            batched += count
            batches += 1
        run.clear()

    for item in items:
        if isinstance(item, str):
            flush()
            frames.append(item)
            reserved += len(item)
            continue
        reserved += item.size_bytes
        messages += 1
        run.append(item)
        if len(run) >= limit:
            flush()
    flush()
    return frames, reserved, messages, batched, batches


def websocket_frame(text: str) -> bytes:
    """``text`` as one final, unmasked WebSocket text frame (RFC 6455 section 5.2): what a
    server sends when no extension was negotiated. The bytes are the same for every
    connection, so one fan-out builds them once."""
    return _frame.websocket_frame(text.encode())


class FrameCache:
    """Encoded WebSocket frames shared by every connection of a gateway.

    A lone message's frame is the message's own ``wire`` (built once, at publish). A
    ``batch`` frame, joined from the messages' own JSON, is cached for the last run of
    messages asked for: in a fan-out, the subscribers of a channel flush the same runs one
    after another, so one entry serves most of them, and the memory it holds is one frame,
    not one per connection.
    """

    __slots__ = ("_run", "_wire", "hits", "misses")

    def __init__(self) -> None:
        self._run: tuple[Message, ...] = ()
        self._wire = b""
        self.hits = 0
        self.misses = 0

    def message(self, message: Message) -> bytes:
        return message.wire

    def batch(self, run: Sequence[Message]) -> bytes:
        key = tuple(run)
        # Messages compare by identity: this is a pointer comparison per message.
        if key == self._run:
            self.hits += 1
            return self._wire
        self.misses += 1
        self._run = key
        self._wire = _frame.websocket_frame(_frame.batch_payload([m.payload for m in run]))
        return self._wire


def encode(messages: Iterable[Message]) -> tuple[str, int]:
    """One wire frame for ``messages`` (a lone ``message`` frame, or a ``batch``) and the
    number of messages in it. Each message's own frame is encoded once and shared."""
    frames = [protocol.message_frame(m) for m in messages]
    if len(frames) == 1:
        return frames[0], 1
    return protocol.batch_frame(frames), len(frames)
