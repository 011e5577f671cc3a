"""Jobs over the WebSocket: what the gateway needs of the job service, and the subscription
that carries a submitted job's events to the connection that submitted it.

The gateway sees the job service only through :class:`JobSubmitter` (one method), wired by
the supervisor; ``None`` means jobs are not served on this gateway (a ``submit`` frame is
then answered ``unavailable``).

Submits on one connection run concurrently, up to :data:`SUBMITS_IN_FLIGHT` (their acks come
back in commit order, matched by ``id``): pipelined submits then share the journal's commits
instead of paying one commit each, one after the other (measured, issue 17: one connection
submitting serially capped a pipelining client at a commit per job). Beyond that bound the
reader stops reading, and TCP pushes back on the client: submits are paced by what the server
can commit, not by the per-connection frame rate. A submit that creates a job is a job, bounded
as HTTP submits are (``[pool] max_queue``); one that does not (refused, or an idempotent
replay) costs a token of the connection's frame budget like any other frame, so a flood of
bad submits is still closed with 1008.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import trio

from perfgate.auth import Principal
from perfgate.broker import Hub, Message
from perfgate.errors import PerfgateError, Unavailable, ValidationError
from perfgate.gateway import protocol
from perfgate.gateway.state import ConnState
from perfgate.gateway.subscription import MAX_SUBSCRIPTIONS, Outlet, Subscription
from perfgate.gateway.tasks import TaskStarter
from perfgate.jobs.lifecycle import is_final_state_event as is_final
from perfgate.ratelimit import TokenBucket
from perfgate.store import JobRecord, new_job_id

SUBMITS_IN_FLIGHT = 64
"""Submits one connection may have in flight (validated, committing, not yet acked); the
reader waits for one to finish before it reads further. ``GET /v1/info`` tells clients
(``ws_submits_in_flight``): submit frames are not held to the frame rate limit."""
SUBMIT_SETTLE_S = 1.0
"""How long a closing connection waits for its submits in flight to finish, so that a job
being committed is also queued (and, while draining, acked) before the connection ends."""


class JobSubmitter(Protocol):
    async def submit(
        self, body: Any, *, tenant: str, job_id: str | None = None
    ) -> tuple[JobRecord, bool]:
        """Validate, commit and queue a job owned by ``tenant`` (see
        :meth:`perfgate.jobs.JobService.submit`): ``(job, created)``; ``job_id`` is the id a
        new job gets."""
        ...


class JobOutlet(Outlet, Protocol):
    """What a submitted job's subscription feeds: the connection that submitted it."""

    def flush_now(self) -> None: ...


class JobSubscription(Subscription):
    """The subscription a ``submit`` opens on ``jobs:{id}``. It notes when the job's final
    state event has passed, so the connection can drop it: a connection submitting job
    after job does not pile up subscriptions."""

    __slots__ = ("finished", "offset", "replay")

    def __init__(self, conn: JobOutlet, channel: str) -> None:
        super().__init__(conn, channel)
        self.finished = False
        #: The channel's offset when subscribed, and the history replayed (``since``).
        self.offset = 0
        self.replay: list[Message] = []

    def deliver(self, message: Message) -> None:
        super().deliver(message)
        if self.held is None and self.active and is_final(message.data):
            self.finished = True
            # Someone waits for this one: it goes now, not at the end of a batch window
            # (5 ms by default, most of a no-op job's round trip).
            cast(JobOutlet, self.conn).flush_now()


class SubmitSlots:
    """The submits in flight on one connection, the event their reader waits on, and the
    cancel scopes of their tasks: they run in the gateway's shared nursery, not in one the
    connection could cancel, so :meth:`cancel` ends those still running when it closes."""

    __slots__ = ("in_flight", "room", "scopes")

    def __init__(self) -> None:
        self.in_flight = 0
        self.room: trio.Event | None = None
        self.scopes: set[trio.CancelScope] = set()

    def enter(self) -> trio.CancelScope:
        """A submit task starts: its cancel scope (the slot was taken by the reader)."""
        scope = trio.CancelScope()
        self.scopes.add(scope)
        return scope

    def cancel(self) -> None:
        for scope in self.scopes:
            scope.cancel()

    def release(self, scope: trio.CancelScope) -> None:
        self.in_flight -= 1
        self.scopes.discard(scope)
        if self.room is not None:
            self.room.set()
            self.room = None

    async def wait_below(self, limit: int) -> None:
        while self.in_flight >= limit:
            if self.room is None:
                self.room = trio.Event()
            await self.room.wait()


class JobOps:
    """The ``submit`` op of a :class:`~perfgate.gateway.connection.Connection` (a base class
    of it: these methods use the connection's subscriptions, hub and outbox)."""

    __slots__ = ()
    principal: Principal
    _jobs: JobSubmitter | None
    _hub: Hub
    _subs: dict[str, Subscription]
    _submits: SubmitSlots | None
    _bucket: TokenBucket
    _nursery: TaskStarter | None
    _state: ConnState

    def offer(self, message: Message) -> None: ...
    def count_drop(self) -> None: ...
    def request_close(self, reason: str | None, *, flush: bool = False) -> None: ...
    def flush_now(self) -> None: ...
    def _submit_slots(self) -> SubmitSlots:
        raise NotImplementedError

    def _failed(self, exc: Exception) -> None: ...
    async def _queue_control(self, frame: str) -> None: ...

    async def _start_submit(self, op: protocol.Submit) -> None:
        """Run ``op`` in a task of its own once fewer than :data:`SUBMITS_IN_FLIGHT` are in
        flight (waiting here is the reader not reading: backpressure on the client)."""
        slots = self._submit_slots()
        await slots.wait_below(SUBMITS_IN_FLIGHT)
        if self._nursery is None or not self._state.accepts_messages:
            return
        slots.in_flight += 1
        self._nursery.start_soon(self._run_submit, op, slots, name="gateway.submit")

    async def _run_submit(self, op: protocol.Submit, slots: SubmitSlots) -> None:
        scope = slots.enter()
        try:
            with scope:
                try:
                    created = await self._submit(op)
                except PerfgateError as exc:
                    await self._queue_control(protocol.error_from(op.id, exc))
                    created = False
                if not created and self._bucket.take(trio.current_time()) > 0:
                    self.request_close("rate limit exceeded")
        except Exception as exc:
            self._failed(exc)
        finally:
            slots.release(scope)

    def _ended(self) -> bool:
        return self._state is ConnState.CLOSED

    async def _settle_submits(self, timeout_s: float) -> None:
        """Wait, up to ``timeout_s``, for the submits in flight to finish."""
        slots = self._submits
        if slots is None:
            return
        with trio.move_on_after(timeout_s):
            await slots.wait_below(1)

    async def _submit(self, op: protocol.Submit) -> bool:
        """Submit a job and follow it: the connection is subscribed to ``jobs:{id}`` before
        the job is committed (so before it can start: no event is missed), the ``ack``
        carrying the job is queued once it is committed, and the job's events follow it.
        Whether a job was created; raises the PerfgateError to answer with."""
        if self._jobs is None:
            raise Unavailable("jobs are not served on this gateway")
        self.principal.require("submit")
        await self._drop_finished_jobs()
        if len(self._subs) >= MAX_SUBSCRIPTIONS:
            raise ValidationError(f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        job_id = new_job_id()
        sub = await self._open_job_channel(f"jobs:{job_id}", since=None)
        try:
            record, created = await self._jobs.submit(
                op.body, tenant=self.principal.tenant, job_id=job_id
            )
        except BaseException:
            with trio.CancelScope(shield=True) as cleanup:
                cleanup.deadline = trio.current_time() + 1.0
                await self._close_job_channel(sub)
            raise
        follow: JobSubscription | None = sub
        replay: list[Message] = []
        if not created:  # an idempotent replay: follow the earlier job, from its start
            await self._close_job_channel(sub)
            follow = None  # unless already followed on this connection
            if f"jobs:{record.id}" not in self._subs:
                follow = await self._open_job_channel(f"jobs:{record.id}", since=0)
                replay, follow.replay = follow.replay, []
        await self._queue_control(protocol.ack(op.id, job=record.to_json(), created=created))
        if follow is not None:
            for message in replay:
                self.offer(message)
            follow.go_live(replay[-1].offset if replay else follow.offset)
            if replay and is_final(replay[-1].data):
                follow.finished = True
        return created

    async def _open_job_channel(self, name: str, *, since: int | None) -> JobSubscription:
        if self._ended():
            raise Unavailable("the connection is closed")
        sub = JobSubscription(self, name)
        self._subs[name] = sub
        try:
            found = await self._hub.subscribe(name, sub, since=since)
            if self._ended():
                # Ended while subscribing: its cleanup has already run, and would not
                # remove this subscription from the hub.
                raise Unavailable("the connection is closed")
        except BaseException:
            self._subs.pop(name, None)
            sub.active = False
            with trio.CancelScope(shield=True) as cleanup:
                cleanup.deadline = trio.current_time() + 1.0
                await self._hub.unsubscribe(name, sub)
            raise
        sub.offset = found.offset
        sub.replay = list(found.messages)
        return sub

    async def _close_job_channel(self, sub: JobSubscription) -> None:
        sub.active = False
        if self._subs.get(sub.channel) is sub:
            del self._subs[sub.channel]
        await self._hub.unsubscribe(sub.channel, sub)

    async def _drop_finished_jobs(self) -> None:
        """Unsubscribe the channels of submitted jobs whose final state was delivered."""
        done = [s for s in self._subs.values() if isinstance(s, JobSubscription) and s.finished]
        for sub in done:
            await self._close_job_channel(sub)
