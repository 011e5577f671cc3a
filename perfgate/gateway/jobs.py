"""Jobs over the WebSocket: what the gateway needs of the job service, and the subscription
that carries a submitted job's events to the connection that submitted it.

The gateway sees the job service only through :class:`JobSubmitter` (one method), wired by
the supervisor; ``None`` means jobs are not served on this gateway (a ``submit`` frame is
then answered ``unavailable``).
"""

from __future__ import annotations

from typing import Any, Protocol

from perfgate.broker import Message
from perfgate.gateway.subscription import Outlet, Subscription
from perfgate.jobs.lifecycle import FINAL_STATES
from perfgate.store import JobRecord

_FINAL = frozenset(str(state) for state in FINAL_STATES)


class JobSubmitter(Protocol):
    async def submit(self, body: Any, *, job_id: str | None = None) -> tuple[JobRecord, bool]:
        """Validate, commit and queue a job (see :meth:`perfgate.jobs.JobService.submit`):
        ``(job, created)``; ``job_id`` is the id a new job gets."""
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
