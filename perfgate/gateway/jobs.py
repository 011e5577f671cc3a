"""Jobs over the WebSocket: what the gateway needs of the job service, and the subscription
that carries a submitted job's events to the connection that submitted it.

The gateway sees the job service only through :class:`JobSubmitter` (one method), wired by
the supervisor; ``None`` means jobs are not served on this gateway (a ``submit`` frame is
then answered ``unavailable``).
"""

from __future__ import annotations

from typing import Any, Protocol

import trio

from perfgate.auth import Principal
from perfgate.broker import Hub, Message
from perfgate.errors import Unavailable, ValidationError
from perfgate.gateway import protocol
from perfgate.gateway.subscription import MAX_SUBSCRIPTIONS, Outlet, Subscription
from perfgate.jobs.lifecycle import FINAL_STATES
from perfgate.store import JobRecord, new_job_id

_FINAL = frozenset(str(state) for state in FINAL_STATES)


class JobSubmitter(Protocol):
    async def submit(
        self, body: Any, *, tenant: str, job_id: str | None = None
    ) -> tuple[JobRecord, bool]:
        """Validate, commit and queue a job owned by ``tenant`` (see
        :meth:`perfgate.jobs.JobService.submit`): ``(job, created)``; ``job_id`` is the id a
        new job gets."""
        ...


class JobSubscription(Subscription):
    """The subscription a ``submit`` opens on ``jobs:{id}``. It notes when the job's final
    state event has passed, so the connection can drop it: a connection submitting job
    after job does not pile up subscriptions."""

    __slots__ = ("finished", "offset", "replay")

    def __init__(self, conn: Outlet, channel: str) -> None:
        super().__init__(conn, channel)
        self.finished = False
        #: The channel's offset when subscribed, and the history replayed (``since``).
        self.offset = 0
        self.replay: list[Message] = []

    def deliver(self, message: Message) -> None:
        super().deliver(message)
        if self.held is None and is_final(message.data):
            self.finished = True


def is_final(data: Any) -> bool:
    """Whether a job channel's event is the job's final state."""
    return isinstance(data, dict) and data.get("event") == "state" and data.get("state") in _FINAL


class JobOps:
    """The ``submit`` op of a :class:`~perfgate.gateway.connection.Connection` (a base class
    of it: these methods use the connection's subscriptions, hub and outbox)."""

    __slots__ = ()
    principal: Principal
    _jobs: JobSubmitter | None
    _hub: Hub
    _subs: dict[str, Subscription]

    def offer(self, message: Message) -> None: ...
    def count_drop(self) -> None: ...
    async def _queue_control(self, frame: str) -> None: ...

    async def _submit(self, op: protocol.Submit) -> str:
        """Submit a job and follow it: the connection is subscribed to ``jobs:{id}`` before
        the job is committed (so before it can start: no event is missed), the ``ack``
        carrying the job is queued once it is committed, and the job's events follow it."""
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
        return ""

    async def _open_job_channel(self, name: str, *, since: int | None) -> JobSubscription:
        sub = JobSubscription(self, name)
        self._subs[name] = sub
        try:
            found = await self._hub.subscribe(name, sub, since=since)
        except BaseException:
            self._subs.pop(name, None)
            sub.active = False
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
