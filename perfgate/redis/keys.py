"""The Redis names of one deployment: every key, stream and pub/sub channel perfgate uses.

Pure: no I/O. ``P`` is the prefix (``perfgate:`` by default). The braces are part of the
names (``{job}``, ``{q}``, ...); the Lua scripts (:mod:`perfgate.redis.scripts`) build some of
these names from the prefix themselves: fine on one Redis (what perfgate supports), not on
Redis Cluster. See docs/architecture.md §6.

Channels (per channel ``C``): ``P{ch}:C:meta``, ``P{ch}:C:hist``, pub/sub ``P{msg}:C``.
Jobs (per job ``J``): ``P{job}:J``, ``P{job}:J:log``, ``P{idem}:TENANT/KEY``, ``P{lease}:J``,
``P{ix}:STATE``, ``P{tix}:TENANT:STATE``, ``P{done}``, ``P{sched}``. Queue: ``P{q}:PRIORITY``
(consumer group :data:`GROUP`). Task limits: ``P{slots}:TASK``, ``P{held}:TASK``,
``P{heldseq}``. What each holds is told beside the scripts that write it.
"""

from __future__ import annotations

from typing import Final

import attrs

DEFAULT_PREFIX: Final = "perfgate:"
#: The consumer group of the job streams: every instance is one consumer of it.
GROUP: Final = "workers"


@attrs.frozen
class Keys:
    """The Redis names of one deployment (one prefix)."""

    prefix: str = DEFAULT_PREFIX

    # -- channels ---------------------------------------------------------------------------

    def meta(self, channel: str) -> str:
        return f"{self.prefix}{{ch}}:{channel}:meta"

    def history(self, channel: str) -> str:
        return f"{self.prefix}{{ch}}:{channel}:hist"

    def pubsub(self, channel: str) -> str:
        return f"{self.prefix}{{msg}}:{channel}"

    @property
    def pubsub_pattern(self) -> str:
        return f"{self.prefix}{{msg}}:*"

    def channel_of(self, pubsub_channel: str) -> str | None:
        """The perfgate channel of a pub/sub channel name; None if not one of ours."""
        head = f"{self.prefix}{{msg}}:"
        return pubsub_channel[len(head) :] if pubsub_channel.startswith(head) else None

    # -- jobs -------------------------------------------------------------------------------

    def job(self, job_id: str) -> str:
        return f"{self.prefix}{{job}}:{job_id}"

    def log(self, job_id: str) -> str:
        return f"{self.prefix}{{job}}:{job_id}:log"

    def index(self, state: str) -> str:
        """The listing index of every job in ``state`` (``all``: every state)."""
        return f"{self.prefix}{{ix}}:{state}"

    def stream(self, priority: str) -> str:
        return f"{self.prefix}{{q}}:{priority}"

    def held(self, task: str) -> str:
        """The jobs of ``task`` waiting for a slot under its ``max_concurrency``."""
        return f"{self.prefix}{{held}}:{task}"


def index_member(created_at: float, job_id: str) -> str:
    """The sorted-set member of a job: sorts like ``(created_at, id)`` for positive times."""
    return f"{created_at:017.6f}|{job_id}"


def idempotency_slot(tenant: str, key: str) -> str:
    """Where a tenant's idempotency key lives: keys are unique per tenant, never across."""
    return f"{tenant}/{key}"
