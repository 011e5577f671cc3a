"""One WebSocket connection: its reader, its one writer, its state.

::

    Connection.run(tasks)       (the connection's handler task; ``tasks`` starts tasks in
    │                            the gateway's shared nursery: see perfgate.gateway.tasks)
    ├── reader      client frames -> ops -> replies into the outbox (run's own task)
    ├── writer      only while there is something to write: the outbox (a list + byte
    │               budget) -> batched frames -> GatewayStream; at most one at a time
    └── ping        only while a heartbeat probe waits for its pong

An idle connection has no task of its own beyond its reader, and no nursery (measured at
10,000 idle connections, issue 16.2: each sleeping task cost a coroutine, a cancel scope
and an event; a nursery, 1.4 KiB). Its tasks end without one to cancel: the writer when the
state stops writing (or its write fails on the closed socket), a probe by the cancel scope
that :meth:`_cleanup` cancels.

The heartbeat and the slow-consumer deadline are timers on the gateway's one
:class:`~perfgate.gateway.pulse.Pulse` task, not tasks of their own. Every byte to the peer
goes through the connection's :class:`~perfgate.gateway._wire.GatewayStream`, which keeps
frames whole whoever writes them; the write side is :mod:`perfgate.gateway.writer`. The
lifecycle is :mod:`perfgate.gateway.state`'s table; the batching rule is
:meth:`BatchPlan.send_at`; close codes come from :data:`perfgate.errors.WS_CLOSE_CODES`.

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
from perfgate.broker import Hub
from perfgate.config import GatewayConfig
from perfgate.errors import WS_CLOSE_CODES, Conflict, NotFound, PerfgateError, ValidationError
from perfgate.gateway import channels, protocol
from perfgate.gateway._wire import GatewayStream
from perfgate.gateway.heartbeat import HeartbeatPolicy, HeartbeatTiming, Timer, on_grid
from perfgate.gateway.jobs import SUBMIT_SETTLE_S, JobOps, JobSubmitter, SubmitSlots
from perfgate.gateway.outbox import BatchPlan, ByteBudget, FrameCache
from perfgate.gateway.pulse import Pulse
from perfgate.gateway.state import ConnInput, ConnState, takes_close_request, transition
from perfgate.gateway.stats import GatewayStats
from perfgate.gateway.subscription import MAX_SUBSCRIPTIONS, Subscription
from perfgate.gateway.tasks import TaskStarter
from perfgate.gateway.writer import Writer, _Outgoing
from perfgate.ratelimit import TokenBucket

log = logging.getLogger("perfgate.gateway")

_GONE = (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError)
"""What a write or read raises when the peer is gone: a close, not a failure."""


class Connection(Writer, JobOps):
    """One accepted WebSocket. Create it, then ``await run()``; it returns when closed."""

    # Thousands of these live at once: slots keep an idle connection small.
    __slots__ = (
        "_bucket",
        "_close_timeout_s",
        "_frames",
        "_hub",
        "_job_tenant",
        "_jobs",
        "_nursery",
        "_on_delivery",
        "_on_rtt",
        "_plan",
        "_policy",
        "_probe_scope",
        "_pulse",
        "_read_scope",
        "_state",
        "_stats",
        "_submits",
        "_subs",
        "_timer",
        "_wire",
        "budget",
        "client",
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
        wire: GatewayStream,
        pulse: Pulse,
        session: str,
        principal: Principal,
        hub: Hub,
        config: GatewayConfig,
        stats: GatewayStats,
        close_timeout_s: float,
        plan: BatchPlan | None = None,
        timing: HeartbeatTiming | None = None,
        client: str | None = None,
        on_rtt: Callable[[float], None] | None = None,
        on_delivery: Callable[[float], None] | None = None,
        frames: FrameCache | None = None,
        job_tenant: channels.JobTenant | None = None,
        jobs: JobSubmitter | None = None,
    ) -> None:
        self.session = session
        self.principal = principal
        self.client = client
        self._job_tenant = job_tenant
        self._jobs = jobs
        self.ws = ws
        self._wire = wire
        self._pulse = pulse
        self._hub = hub
        self._stats = stats
        self._close_timeout_s = close_timeout_s
        self._on_rtt = on_rtt
        self._on_delivery = on_delivery
        # Shared encoded frames (see FrameCache) when the handshake negotiated no extension;
        # else None: every frame goes through trio-websocket's send_message.
        self._frames = (frames if frames is not None else FrameCache()) if wire.plain else None
        now = trio.current_time()
        self.opened_at = now
        self.budget = ByteBudget(config.queue_bytes, config.slow_consumer_grace_s)
        self._plan = plan or BatchPlan(config.batch_window_ms / 1000, config.batch_max)
        if timing is None:
            timing = HeartbeatTiming(
                config.heartbeat_min_s, config.heartbeat_max_s, config.pong_timeout_s
            )
        self._policy = HeartbeatPolicy(timing, now)
        self._probe_scope: trio.CancelScope | None = None  # a probe is out
        self._timer: Timer | None = None
        rate = config.rate_limit_per_s
        self._bucket = TokenBucket(rate, max(1.0, rate), updated_at=now)
        self._queue: list[_Outgoing] = []
        self._queued_messages = 0
        self._urgent = False
        self._last_sent_at = -math.inf
        self._pending_reserved = 0
        self._subs: dict[str, Subscription] = {}
        self._submits: SubmitSlots | None = None
        self._state = ConnState.OPEN
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._read_scope = trio.CancelScope()
        self._nursery: TaskStarter | None = None
        self._wake: trio.CancelScope | None = None
        self._room: trio.Event | None = None
        self._writer_running = False
        self._writer_done: trio.Event | None = None  # made when a drain waits for the writer

    @property
    def state(self) -> ConnState:
        return self._state

    # -- called from other tasks (publishers, the gateway) ------------------------------------

    def request_close(self, reason: str | None, *, flush: bool = False) -> None:
        """Ask the connection to close, with the code :data:`WS_CLOSE_CODES` gives
        ``reason`` (None: the peer has closed or left). ``flush``: write what is queued
        first, within the close timeout. The first request wins. Never blocks."""
        state = self._state
        if not takes_close_request(state):
            return
        self.close_code = None if reason is None else WS_CLOSE_CODES[reason]
        self.close_reason = reason
        self._state = transition(state, ConnInput.DRAIN if flush else ConnInput.CLOSE)
        self._read_scope.cancel()
        self._wake_writer(-math.inf)

    def count_drop(self) -> None:
        self.budget.drop(trio.current_time())
        self._stats.messages_dropped += 1
        self._wake_for_budget()

    def flush_now(self) -> None:
        """Write what is queued now, batch window or not (a job's final state is queued:
        someone waits for it)."""
        if self._queue:
            self._urgent = True
            self._ensure_writer(-math.inf)

    def _submit_slots(self) -> SubmitSlots:
        slots = self._submits
        if slots is None:  # made on the first submit: most connections never submit
            slots = self._submits = SubmitSlots()
        return slots

    def on_timer(self, now: float) -> None:
        """The :class:`Pulse` calls this at the time set by :meth:`_schedule`: close a slow
        consumer whose grace is over, start a heartbeat probe when one is due."""
        self._timer = None
        if not self._state.accepts_messages or self._nursery is None:
            return
        budget = self.budget
        if budget.is_slow(now):
            self.request_close("slow consumer")
            return
        policy = self._policy
        if self._probe_scope is None:
            if policy.should_probe(now, self._pulse.random()):
                self._probe_scope = scope = trio.CancelScope()
                self._nursery.start_soon(self._probe, scope, name="gateway.ping")
            else:
                self._schedule(policy.due_at)
        if budget.over_since is not None:
            self._schedule(budget.over_since + budget.grace_s)

    # -- timers and wake-ups ------------------------------------------------------------------

    def _schedule(self, when: float) -> None:
        """Have :meth:`on_timer` called at ``when`` (or earlier, if already set earlier),
        on the pulse's grid."""
        when = on_grid(when, self._pulse.grid_s)
        timer = self._timer
        if timer is not None:
            if timer[0] <= when:
                return
            Pulse.cancel(timer)
        self._timer = self._pulse.call_at(when, self)

    def _wake_for_budget(self) -> None:
        """Look again when the grace period of an over-budget queue ends, so that a slow
        consumer is closed on time even if nothing more is published."""
        since = self.budget.over_since
        if since is not None and self._state.accepts_messages and self._nursery is not None:
            self._schedule(since + self.budget.grace_s)

    # -- the task tree ------------------------------------------------------------------------

    async def run(self, nursery: TaskStarter) -> None:
        """Serve until the peer leaves, a limit closes the connection, or
        :meth:`request_close`. The writer and heartbeat probes start through ``nursery``
        (the gateway's :class:`~perfgate.gateway.tasks.ConnectionTasks`: a nursery of the
        connection's own would cost every idle connection a nursery and a cancel scope
        more); none is started once ``run`` returns, and none outlives the connection for
        long (see the module docstring). If cancelled (hard shutdown), the socket is closed
        at once and subscriptions are removed. Never raises except Cancelled."""
        try:
            self._nursery = nursery
            await self._queue_control(protocol.welcome(self.session, self._policy.timing.max_s))
            self._schedule(self._policy.first_check_at(self._pulse.random()))
            # The reader is this task itself (one task less per idle connection), and its
            # loop is inline (a coroutine frame less); request_close() cancels its scope.
            with self._read_scope:
                ws = self.ws
                try:
                    while await self._on_frame(await ws.get_message()):
                        pass
                except Exception as exc:
                    self._failed(exc)
            self.request_close(None)  # the peer left, or a limit was hit
            await self._close()
        finally:
            with trio.CancelScope(shield=True):
                await self._settle_submits(SUBMIT_SETTLE_S)
            if self._submits is not None:
                self._submits.cancel()  # those not settled by now end with the connection
            self._nursery = None
            with trio.CancelScope(shield=True) as cleanup:
                cleanup.deadline = trio.current_time() + 1.0
                await self._cleanup()

    async def _close(self) -> None:
        if self._state is ConnState.DRAINING:
            # Graceful (drain): the submits in flight queue their acks, then the writer
            # empties the queue, within the bound.
            await self._settle_submits(self._close_timeout_s)
            self._ensure_writer(-math.inf)
            if self._writer_running:
                self._writer_done = done = trio.Event()
                with trio.move_on_after(self._close_timeout_s):
                    await done.wait()
            self._state = transition(self._state, ConnInput.DRAINED)
        self._wake_writer(-math.inf)  # it stops; a write in flight is left to finish
        code = self.close_code
        if code is not None:
            # The close frame goes behind any write in flight (GatewayStream keeps frames
            # whole), then aclose() waits for the peer's; on timeout the socket is closed.
            with trio.move_on_after(self._close_timeout_s):
                await self.ws.aclose(code, self.close_reason)

    async def _cleanup(self) -> None:
        self._state = transition(self._state, ConnInput.ENDED)
        if self._probe_scope is not None:
            self._probe_scope.cancel()  # no pong will come: trio-websocket keeps it waiting
        if self._timer is not None:
            Pulse.cancel(self._timer)
            self._timer = None
        for name, sub in list(self._subs.items()):
            sub.active = False
            await self._hub.unsubscribe(name, sub)
        self._subs.clear()
        for item in self._queue:
            self.budget.release(_size(item))
        self._queue.clear()
        self._queued_messages = 0
        if self._room is not None:
            self._room.set()
        if self.ws.closed is None:
            with trio.move_on_after(0.5):
                await self.ws.aclose(self.close_code or WS_CLOSE_CODES["internal error"])
        stats = self._stats
        stats.queue_peak_bytes = max(stats.queue_peak_bytes, self.budget.peak_bytes)

    def last_words(self) -> bytes | None:
        """For :attr:`GatewayStream.last_words`: the close frame trio-websocket owes the
        peer, if any, as the socket closes."""
        closed = self.ws.closed
        if closed is None:
            return None
        return self._wire.failure_close_frame(closed.code, closed.reason)

    def _failed(self, exc: Exception) -> None:
        """Contain a task's failure to this connection: every task ends with this."""
        if isinstance(exc, _GONE):
            self.request_close(None)
            return
        log.error("gateway connection %s failed", self.session, exc_info=exc)
        self._stats.internal_errors += 1
        self.request_close("internal error")

    async def _on_frame(self, text: str | bytes) -> bool:
        """Handle one client frame; False: stop reading (the rate limit closed it)."""
        now = trio.current_time()
        self._policy.on_traffic(now)
        op = protocol.parse(text)
        # Submits are paced by the submits in flight, not by the frame rate (JobOps).
        if not isinstance(op, protocol.Submit) and self._bucket.take(now) > 0:
            self.request_close("rate limit exceeded")
            return False
        self._stats.requests += 1
        reply = await self._handle(op)
        if reply:
            await self._queue_control(reply)
        return True

    async def _probe(self, wait: trio.CancelScope) -> None:
        """One heartbeat probe: ping, wait for the pong up to ``pong_timeout_s``, close
        with 4009 without one. Lives only while the probe is out; ``wait`` (the
        connection's ``_probe_scope``) is cancelled if the connection ends first."""
        policy = self._policy
        self._stats.heartbeat_probes += 1
        sent_at = trio.current_time()
        try:
            wait.deadline = sent_at + policy.timing.pong_timeout_s
            with wait:
                await self.ws.ping()
        except Exception as exc:
            self._failed(exc)
            return
        finally:
            self._probe_scope = None
        if self._state is ConnState.CLOSED:
            return  # cancelled by _cleanup: the connection is gone, no timeout
        if wait.cancelled_caught:
            self._stats.heartbeat_timeouts += 1
            self.request_close("heartbeat timeout")
            return
        now = trio.current_time()
        rtt_s = now - sent_at
        policy.on_pong(rtt_s, now)
        self._stats.rtt.record(rtt_s)
        if self._on_rtt is not None:
            self._on_rtt(rtt_s)
        if self._state.accepts_messages:
            self._schedule(policy.check_at(self._pulse.random()))

    # -- ops ----------------------------------------------------------------------------------

    async def _handle(self, op: protocol.Op | protocol.BadFrame) -> str:
        if isinstance(op, protocol.BadFrame):
            return protocol.error(op.id, op.code, op.message)
        try:
            if isinstance(op, protocol.Ping):
                return protocol.ack(op.id)
            if isinstance(op, protocol.Submit):
                await self._start_submit(op)  # its reply is queued by its own task
                return ""
            if isinstance(op, protocol.Subscribe):
                return await self._subscribe(op)
            if isinstance(op, protocol.Unsubscribe):
                return await self._unsubscribe(op)
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
    if isinstance(item, str):
        return len(item)
    return item.size_bytes


__all__ = ["Connection"]
