"""One WebSocket connection's task tree: reader, writer, heartbeat, in its own nursery.

::

    Connection.run()            (nursery: nothing of it outlives the connection)
    ├── reader      client frames -> ops -> replies into the outbox (run's own task)
    ├── writer      outbox (bounded memory channel + byte budget) -> batched frames
    ├── heartbeat   adaptive pings; closes 4009 on a missed pong
    └── budget      closes 4008 when the queue stays over budget past the grace period

Publishers reach the connection through :class:`~perfgate.gateway.subscription.Subscription` sinks, which never block:
over budget, channel messages are dropped and counted. Errors never leave ``run``: a task
that fails closes its own connection (1011) and nothing else.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from perfgate.auth import Principal
from perfgate.broker import Hub, Message
from perfgate.config import GatewayConfig
from perfgate.errors import Conflict, NotFound, PerfgateError, ValidationError
from perfgate.gateway import channels, protocol
from perfgate.gateway._wire import (
    finish_write,
    raw_frames_ok,
    release_if_held,
    send_texts,
    write_inline,
)
from perfgate.gateway.heartbeat import HeartbeatPolicy
from perfgate.gateway.jobs import JobOps, JobSubmitter
from perfgate.gateway.outbox import BatchPlan, ByteBudget, FrameCache, plan_frames
from perfgate.gateway.pulse import run_heartbeat
from perfgate.gateway.stats import GatewayStats
from perfgate.gateway.subscription import MAX_SUBSCRIPTIONS, Subscription
from perfgate.ratelimit import TokenBucket

log = logging.getLogger("perfgate.gateway")

OUTBOX_MESSAGES = 4096
"""Count bound of the outgoing memory channel (the byte budget usually binds first)."""
WRITE_ITEMS = 256
"""At most this many queued items go out in one socket write."""

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_SLOW_CONSUMER = 4008
CLOSE_HEARTBEAT = 4009

_Outgoing = Message | str | bytes
"""A channel message (droppable, shared across subscribers), a control frame, or the rest
of a frame that :meth:`Connection.offer` wrote in part (the writer holds the socket)."""


class Connection(JobOps):
    """One accepted WebSocket. Create it, then ``await run()``; it returns when closed."""

    # Thousands of these live at once: slots keep an idle connection small.
    __slots__ = (
        "_batch_max",
        "_batch_sleep",
        "_bucket",
        "_close_requested",
        "_close_timeout_s",
        "_closing",
        "_flush",
        "_frames",
        "_hub",
        "_job_tenant",
        "_jobs",
        "_last_flush",
        "_nap",
        "_on_delivery",
        "_on_rtt",
        "_plan",
        "_policy",
        "_queued_items",
        "_queued_messages",
        "_read_scope",
        "_recv",
        "_send",
        "_stats",
        "_stop_writing",
        "_subs",
        "_urgent",
        "_writer_done",
        "_writer_task",
        "_ws",
        "budget",
        "close_code",
        "close_reason",
        "opened_at",
        "principal",
        "session",
        "ws",
    )

    def __init__(
        self,
        ws: WebSocketConnection,
        *,
        session: str,
        principal: Principal,
        hub: Hub,
        config: GatewayConfig,
        stats: GatewayStats,
        close_timeout_s: float,
        on_rtt: Callable[[float], None] | None = None,
        on_delivery: Callable[[float], None] | None = None,
        frames: FrameCache | None = None,
        job_tenant: channels.JobTenant | None = None,
        jobs: JobSubmitter | None = None,
    ) -> None:
        self.session = session
        self.principal = principal
        self._job_tenant = job_tenant
        self._ws = ws
        self.ws = ws
        self._hub = hub
        self._jobs = jobs
        self._stats = stats
        self._close_timeout_s = close_timeout_s
        self._on_rtt = on_rtt
        self._on_delivery = on_delivery
        # Shared encoded frames (see FrameCache), or None: this connection needs its own.
        if raw_frames_ok(ws):
            self._frames: FrameCache | None = frames if frames is not None else FrameCache()
        else:
            self._frames = None
        now = trio.current_time()
        self.opened_at = now
        self.budget = ByteBudget(config.queue_bytes, config.slow_consumer_grace_s)
        self._plan = BatchPlan(config.batch_window_ms / 1000, config.batch_max)
        self._policy = HeartbeatPolicy(
            config.heartbeat_min_s, config.heartbeat_max_s, config.pong_timeout_s, now
        )
        rate = config.rate_limit_per_s
        self._bucket = TokenBucket(rate, max(1.0, rate), updated_at=now)
        self._send, self._recv = trio.open_memory_channel[_Outgoing](OUTBOX_MESSAGES)
        self._subs: dict[str, Subscription] = {}
        self._close_requested = False
        self._read_scope = trio.CancelScope()
        self._closing = False
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._flush = False
        self._stop_writing = False
        self._batch_sleep: trio.CancelScope | None = None
        self._nap: trio.CancelScope | None = None
        self._last_flush = -math.inf
        self._queued_messages = 0
        self._queued_items = 0
        self._urgent = False
        self._batch_max = config.batch_max
        self._writer_done = trio.Event()
        self._writer_task: trio.lowlevel.Task | None = None

    # -- called from other tasks (publishers, the gateway) ------------------------------------

    def request_close(
        self, code: int | None, reason: str | None = None, *, flush: bool = False
    ) -> None:
        """Ask the connection to close with ``code`` (None: it is already closed by the
        peer). The first request wins. Never blocks."""
        if self._close_requested:
            return
        self.close_code = code
        self.close_reason = reason
        self._flush = flush
        self._closing = True
        self._close_requested = True
        self._read_scope.cancel()

    def count_drop(self) -> None:
        self.budget.drop(trio.current_time())
        self._stats.messages_dropped += 1
        self._wake_for_budget()

    def _wake_for_budget(self) -> None:
        """Make the heartbeat wake when the grace period of an over-budget queue ends,
        so that a slow consumer is closed on time even if nothing more is published."""
        since = self.budget.over_since
        nap = self._nap
        if since is not None and nap is not None and not self._close_requested:
            nap.deadline = min(nap.deadline, since + self.budget.grace_s)

    def offer(self, message: Message) -> None:
        """Send or queue a channel message: written to the socket at once if the writer
        would send it at once anyway (nothing queued, batching's leading edge, the socket
        takes it); else queued if the byte budget allows; else dropped and counted.
        Called synchronously by publishers: never blocks, never raises."""
        if self._closing:
            return
        size = message.size_bytes
        now = trio.current_time()
        frames = self._frames
        if (
            frames is not None
            and self._queued_items == 0
            and self._writer_task is not None
            and (
                not self._plan.enabled
                or message.priority == "high"
                or now >= self._last_flush + self._plan.window_s
            )
        ):
            # The writer would send this at once (nothing queued; batching's leading edge):
            # write it from here instead of waking the writer. At 1,000 subscribers that
            # is 1,000 scheduling rounds less per publish.
            rest = write_inline(self._ws, frames.message(message), self._writer_task)
            if rest is not None:
                self._last_flush = now
                if rest:
                    self.budget.force_reserve(len(rest))
                    self._queued_items += 1
                    self._send.send_nowait(rest)  # empty channel, not closed (not _closing)
                self._sent(1, 1, message.published_at)
                return
        budget = self.budget
        if not budget.try_reserve(size, now):
            self._stats.messages_dropped += 1
            if budget.is_slow(now):
                self.request_close(CLOSE_SLOW_CONSUMER, "slow consumer")
            self._wake_for_budget()
            return
        try:
            self._send.send_nowait(message)
        except trio.WouldBlock:
            budget.release(size)
            self.count_drop()
            return
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            budget.release(size)
            return
        self._queued_messages += 1
        self._queued_items += 1
        if message.priority == "high":
            self._urgent = True
        sleep = self._batch_sleep
        if sleep is not None and (self._urgent or self._queued_messages >= self._batch_max):
            sleep.cancel()

    # -- the task tree ------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until the peer leaves, a limit closes the connection, or
        :meth:`request_close`. If cancelled (hard shutdown), the socket is closed at once
        and subscriptions are removed. Never raises except Cancelled."""
        await self._queue_control(protocol.welcome(self.session, self._policy.delay()))
        try:
            async with trio.open_nursery() as nursery:
                # Constant names: trio would otherwise build one string per task. The
                # reader is this task itself (one task less per idle connection);
                # request_close() cancels its scope.
                nursery.start_soon(self._write_loop, name="gateway.writer")
                nursery.start_soon(self._heartbeat, name="gateway.heartbeat")
                with self._read_scope:
                    await self._read_loop()
                self.request_close(None)  # the peer left, or a limit was hit
                await self._close(nursery)
        finally:
            with trio.CancelScope(shield=True) as cleanup:
                cleanup.deadline = trio.current_time() + 1.0
                await self._cleanup()

    async def _close(self, nursery: trio.Nursery) -> None:
        if self._flush:
            # Graceful (drain): let the writer empty the queue first, within the bound.
            self._send.close()
            with trio.move_on_after(self._close_timeout_s):
                await self._writer_done.wait()
        self._stop_writing = True
        # Wakes a writer waiting for work (EndOfChannel, or an item it will discard); a
        # write in flight is left to finish, or to aclose() below.
        self._send.close()
        code = self.close_code
        if code is not None:
            # aclose() waits for an in-flight write (the stream lock) and then for the
            # peer's close frame; on timeout it closes the socket under the writer.
            with trio.move_on_after(self._close_timeout_s):
                await self._ws.aclose(code, self.close_reason)
        nursery.cancel_scope.cancel()

    async def _cleanup(self) -> None:
        self._closing = True
        for name, sub in list(self._subs.items()):
            sub.active = False
            await self._hub.unsubscribe(name, sub)
        self._subs.clear()
        self._send.close()
        while True:
            try:
                item = self._recv.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            self.budget.release(_size(item))
        self._recv.close()
        if self._ws.closed is None:
            with trio.move_on_after(0.5):
                await self._ws.aclose(self.close_code or CLOSE_INTERNAL, self.close_reason)
        stats = self._stats
        stats.queue_peak_bytes = max(stats.queue_peak_bytes, self.budget.peak_bytes)

    def _failed(self, exc: Exception) -> None:
        """Contain a task's failure to this connection: every task ends with this."""
        if isinstance(exc, ConnectionClosed):
            self.request_close(None)
            return
        log.error("gateway connection %s failed", self.session, exc_info=exc)
        self._stats.internal_errors += 1
        self.request_close(CLOSE_INTERNAL, "internal error")

    async def _queue_control(self, frame: str) -> None:
        """Queue a frame that must not be dropped (acks, errors). May wait for room in the
        channel: only the connection's own reader calls it, so only this client waits."""
        self.budget.force_reserve(len(frame))
        self._urgent = True
        if self._batch_sleep is not None:
            self._batch_sleep.cancel()
        self._queued_items += 1
        try:
            await self._send.send(frame)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.budget.release(len(frame))

    async def _write_loop(self) -> None:
        """Take frames off the outbox and send them.

        One wake-up and one socket write serve many frames. Batching is a throttle with
        a leading edge: a channel message that finds the connection quiet (nothing sent
        in the last window) goes out at once, so batching adds no latency at low rates;
        messages arriving within the window after a send wait for the window's end and
        go out together (:meth:`offer` cuts the wait short when a batch is full, or a
        ``high`` message or a control frame arrives). Each wake-up takes everything
        queued, up to :data:`WRITE_ITEMS`, and writes it at once. (A leading-edge message
        usually never reaches this task: :meth:`offer` writes it itself.)
        """
        recv = self._recv
        plan = self._plan
        self._writer_task = trio.lowlevel.current_task()
        try:
            while not self._stop_writing:
                first = await recv.receive()
                if isinstance(first, bytes):
                    # The rest of an inline write: before anything else, even when stopping
                    # (the stream lock is ours until it is sent).
                    self._queued_items -= 1
                    try:
                        await finish_write(self._ws, first)
                    finally:
                        self.budget.release(len(first))
                    continue
                items: list[Message | str] = [first]
                if self._stop_writing:
                    self._release(items)
                    return
                if (
                    not isinstance(first, str)
                    and not plan.flush_now(1, first)
                    and not self._urgent
                    and self._queued_messages < plan.max_messages
                    and trio.current_time() < plan.deadline(self._last_flush)
                ):
                    with trio.CancelScope(deadline=plan.deadline(self._last_flush)) as s:
                        self._batch_sleep = s
                        await trio.sleep_forever()
                    self._batch_sleep = None
                self._urgent = False
                # Count-bounded, so an empty queue costs no WouldBlock exception.
                for _ in range(min(WRITE_ITEMS, self._queued_items) - 1):
                    try:
                        item = recv.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    # A rest is only queued into an empty channel: it is always first.
                    assert not isinstance(item, bytes)
                    items.append(item)
                self._queued_items -= len(items)
                await self._write(items)
        except trio.EndOfChannel:
            pass
        except Exception as exc:
            self._failed(exc)
        finally:
            self._writer_task = None
            release_if_held(self._ws)
            self._writer_done.set()

    def _release(self, items: list[Message | str]) -> None:
        for item in items:
            if not isinstance(item, str):
                self._queued_messages -= 1
            self.budget.release(_size(item))

    async def _write(self, items: list[Message | str]) -> None:
        frames, reserved, messages, batched, batches = plan_frames(items, self._plan, self._frames)
        self._queued_messages -= messages
        if messages:
            self._last_flush = trio.current_time()
        try:
            # Raw frames imply the fast path: no need to look it up again per write.
            await send_texts(self._ws, frames, fast=True if self._frames is not None else None)
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

    async def _read_loop(self) -> None:
        ws = self._ws
        try:
            while True:
                text = await ws.get_message()
                now = trio.current_time()
                self._policy.on_traffic(now)
                if self._bucket.take(now) > 0:
                    self.request_close(CLOSE_POLICY, "rate limit exceeded")
                    return
                self._stats.requests += 1
                reply = await self._handle(protocol.parse(text))
                if reply:
                    await self._queue_control(reply)
        except Exception as exc:
            self._failed(exc)

    async def _heartbeat(self) -> None:
        try:
            await run_heartbeat(
                self._policy,
                self._ping,
                on_rtt=self._record_rtt,
                on_tick=self._check_slow,
                on_sleep=self._set_nap,
            )
        except Exception as exc:
            self._failed(exc)
            return
        self._stats.heartbeat_timeouts += 1
        self.request_close(CLOSE_HEARTBEAT, "heartbeat timeout")

    async def _ping(self) -> None:
        self._stats.heartbeat_probes += 1
        await self._ws.ping()

    def _record_rtt(self, rtt_s: float) -> None:
        self._stats.rtt.record(rtt_s)
        if self._on_rtt is not None:
            self._on_rtt(rtt_s)

    def _check_slow(self, now: float) -> None:
        if self.budget.is_slow(now):
            self.request_close(CLOSE_SLOW_CONSUMER, "slow consumer")

    def _set_nap(self, scope: trio.CancelScope | None) -> None:
        self._nap = scope
        self._wake_for_budget()

    # -- ops ----------------------------------------------------------------------------------

    async def _handle(self, op: protocol.Op | protocol.ProtocolError) -> str:
        if isinstance(op, protocol.ProtocolError):
            return protocol.error(op.id, op.code, op.message)
        try:
            if isinstance(op, protocol.Ping):
                return protocol.ack(op.id)
            if isinstance(op, protocol.Subscribe):
                return await self._subscribe(op)
            if isinstance(op, protocol.Unsubscribe):
                return await self._unsubscribe(op)
            if isinstance(op, protocol.Submit):
                return await self._submit(op)
            name = channels.check_client_publish(self.principal, op.channel)
            offset = await self._hub.publish(name, op.data, priority=op.priority)
            return protocol.ack(op.id, channel=name, offset=offset)
        except PerfgateError as exc:
            return protocol.error_from(op.id, exc)

    async def _subscribe(self, op: protocol.Subscribe) -> str:
        name = channels.check_subscribe(self.principal, op.channel)
        await channels.check_job_channel(self.principal, name, self._job_tenant)
        if name in self._subs:
            raise Conflict(f"already subscribed to {name!r}")
        if len(self._subs) >= MAX_SUBSCRIPTIONS:
            raise ValidationError(f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        sub = Subscription(self, name)
        self._subs[name] = sub
        try:
            replay = await self._hub.subscribe(name, sub, since=op.since, epoch=op.epoch)
        except Exception:
            self._subs.pop(name, None)
            sub.active = False
            raise
        fields: dict[str, Any] = {"channel": name, "epoch": replay.epoch, "offset": replay.offset}
        if op.since is not None:
            fields["recovered"] = replay.recovered
        # The ack is queued before the replay; live messages wait in `sub.held` meanwhile
        # (queueing the ack may wait for room, which lets publishers run).
        await self._queue_control(protocol.ack(op.id, **fields))
        for message in replay.messages:
            self.offer(message)
        if replay.messages:
            after = replay.messages[-1].offset
        elif op.since is not None and replay.recovered:
            after = op.since
        else:
            after = replay.offset
        sub.go_live(after)
        # The reply was queued above; the caller queues nothing more.
        return ""

    async def _unsubscribe(self, op: protocol.Unsubscribe) -> str:
        name = channels.check_name(op.channel)
        sub = self._subs.pop(name, None)
        if sub is None:
            raise NotFound(f"not subscribed to {name!r}")
        sub.active = False
        await self._hub.unsubscribe(name, sub)
        return protocol.ack(op.id, channel=name)


def _size(item: _Outgoing) -> int:
    if isinstance(item, str | bytes):
        return len(item)
    return item.size_bytes


__all__ = ["Connection", "run_heartbeat"]
