"""A connection's write side: the outbox, the one writer task, the publisher's inline write.

A mixin of :class:`~perfgate.gateway.connection.Connection`, apart so that each file holds one
concern: here, what is written when (:meth:`BatchPlan.send_at`) and by whom (a publisher's
inline write of a whole frame, or the connection's one writer task, which exists only while
there is something to write); every byte goes through the connection's
:class:`~perfgate.gateway._wire.GatewayStream`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio
from trio_websocket import WebSocketConnection

from perfgate.broker import Message
from perfgate.gateway._wire import GatewayStream
from perfgate.gateway.outbox import BatchPlan, ByteBudget, FrameCache, plan_frames, websocket_frame
from perfgate.gateway.state import ConnState
from perfgate.gateway.stats import GatewayStats
from perfgate.gateway.tasks import TaskStarter

OUTBOX_MESSAGES = 4096
"""Count bound of the outgoing queue (the byte budget usually binds first)."""
WRITE_ITEMS = 256
"""At most this many queued items go out in one socket write."""

_Outgoing = Message | str
"""A channel message (droppable, shared across subscribers) or a control frame."""


class Writer:
    """The write side of a connection (a mixin: the attributes are the connection's)."""

    __slots__ = (
        "_last_sent_at",
        "_pending_reserved",
        "_queue",
        "_queued_messages",
        "_room",
        "_urgent",
        "_wake",
        "_writer_done",
        "_writer_running",
    )

    _state: ConnState
    _frames: FrameCache | None
    _queue: list[_Outgoing]
    _queued_messages: int
    _urgent: bool
    _last_sent_at: float
    _pending_reserved: int
    _plan: BatchPlan
    _wire: GatewayStream
    _stats: GatewayStats
    _nursery: TaskStarter | None
    _wake: trio.CancelScope | None
    _room: trio.Event | None
    _writer_running: bool
    _writer_done: trio.Event | None
    _on_delivery: Callable[[float], None] | None
    budget: ByteBudget
    ws: WebSocketConnection

    def request_close(self, reason: str | None, *, flush: bool = False) -> None:
        raise NotImplementedError

    def count_drop(self) -> None:
        raise NotImplementedError

    def _wake_for_budget(self) -> None:
        raise NotImplementedError

    def _failed(self, exc: Exception) -> None:
        raise NotImplementedError

    def offer(self, message: Message) -> None:
        """Send or queue a channel message: written to the socket at once if the writer
        would send it at once anyway (nothing queued, :meth:`BatchPlan.send_at` says now,
        the socket takes it); else queued if the byte budget allows; else dropped and
        counted. Called synchronously by publishers: never blocks, never raises."""
        if not self._state.accepts_messages:
            return
        now = trio.current_time()
        queue = self._queue
        high = message.priority == "high"
        frames = self._frames
        if (
            frames is not None
            and not queue
            and self._plan.send_at(now, self._last_sent_at, 1, high) <= now
        ):
            # Write it from here instead of waking the writer: at 1,000 subscribers that is
            # 1,000 scheduling rounds less per publish. A partial write leaves its rest in
            # the stream's buffer, ahead of any other frame, for the writer to send.
            left = self._wire.write_nowait(frames.message(message))
            if left is not None:
                self._last_sent_at = now
                if left:
                    self.budget.force_reserve(left)
                    self._pending_reserved += left
                    self._ensure_writer(now)
                self._sent(1, 1, message.published_at)
                return
        size = message.size_bytes
        budget = self.budget
        if not budget.try_reserve(size, now):
            self._stats.messages_dropped += 1
            if budget.is_slow(now):
                self.request_close("slow consumer")
            self._wake_for_budget()
            return
        if len(queue) >= OUTBOX_MESSAGES:
            budget.release(size)
            self.count_drop()
            return
        queue.append(message)
        self._queued_messages += 1
        if high:
            self._urgent = True
        self._ensure_writer(
            self._plan.send_at(now, self._last_sent_at, self._queued_messages, self._urgent)
        )

    def _wake_writer(self, at: float) -> None:
        """Make a running writer look at the queue by ``at`` (it may sleep for a batch)."""
        wake = self._wake
        if wake is not None and at < wake.deadline:
            wake.deadline = at

    def _ensure_writer(self, at: float) -> None:
        """There is something to write by ``at``: wake the writer, or start it."""
        if self._writer_running:
            self._wake_writer(at)
        elif self._nursery is not None and self._state.writes:
            self._writer_running = True
            # A constant name: trio would otherwise build one string per task.
            self._nursery.start_soon(self._write_loop, name="gateway.writer")

    async def _queue_control(self, frame: str) -> None:
        """Queue a frame that must not be dropped (acks, errors). Waits for room in the
        queue: only the connection's own reader calls it, so only this client waits."""
        while len(self._queue) >= OUTBOX_MESSAGES and self._state.writes:
            if self._room is None:
                self._room = trio.Event()
            await self._room.wait()
        if not self._state.writes:
            return
        self.budget.force_reserve(len(frame))
        self._queue.append(frame)
        self._urgent = True
        self._ensure_writer(-math.inf)

    async def _write_loop(self) -> None:
        """The connection's one writer (:meth:`_ensure_writer` starts at most one): sends
        the rest of a publisher's partial inline write, then what is queued, when
        :meth:`BatchPlan.send_at` says so. Each wake-up takes everything queued, up to
        :data:`WRITE_ITEMS`, and writes it with one socket write. Ends when nothing is left
        to write, or the state no longer writes."""
        wire = self._wire
        queue = self._queue
        try:
            while self._state.writes:
                if wire.pending_bytes:
                    try:
                        await wire.flush()
                    finally:
                        self.budget.release(self._pending_reserved)
                        self._pending_reserved = 0
                    continue
                if not queue:
                    break
                now = trio.current_time()
                at = self._plan.send_at(
                    now, self._last_sent_at, self._queued_messages, self._urgent
                )
                if at > now:
                    with trio.CancelScope(deadline=at) as wake:
                        self._wake = wake
                        await trio.sleep_forever()
                    self._wake = None
                    continue
                items = queue[:WRITE_ITEMS]
                del queue[:WRITE_ITEMS]
                self._urgent = self._urgent and bool(queue)
                if self._room is not None:
                    self._room.set()
                    self._room = None
                await self._write(items)
        except Exception as exc:
            self._failed(exc)
        finally:
            self._wake = None
            self._writer_running = False
            if self._writer_done is not None:
                self._writer_done.set()

    async def _write(self, items: list[_Outgoing]) -> None:
        frames, reserved, messages, batched, batches = plan_frames(items, self._plan, self._frames)
        self._queued_messages -= messages
        if messages:
            self._last_sent_at = trio.current_time()
        try:
            if self._frames is not None:
                data = b"".join(f if isinstance(f, bytes) else websocket_frame(f) for f in frames)
                await self._wire.send_all(data)
            else:
                for frame in frames:
                    assert isinstance(frame, str)
                    await self.ws.send_message(frame)
        finally:
            self.budget.release(reserved)
        oldest = next((item for item in items if not isinstance(item, str)), None)
        self._sent(len(frames), messages, None if oldest is None else oldest.published_at)
        stats = self._stats
        if batched:
            stats.batches_sent += batches
            stats.messages_batched += batched

    def _sent(self, frames: int, messages: int, oldest_published_at: float | None) -> None:
        if self._on_delivery is not None and oldest_published_at is not None:
            # Called once per write with its oldest message (an inline write is one message):
            # the figure is the server's publish-to-socket delay. The hook must be cheap; the
            # supervisor's samples one call in DELIVERY_SAMPLE_EVERY.
            self._on_delivery(oldest_published_at)
        stats = self._stats
        stats.frames_sent += frames
        stats.messages_sent += messages
