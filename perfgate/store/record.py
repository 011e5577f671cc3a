"""The job record: one row of the journal, and its JSON face (the README's HTTP API); and what a state
transition writes (from the lifecycle table, see the job lifecycle in docs/architecture.md).

Pure: no I/O. Timestamps are epoch seconds (floats) inside perfgate and ISO-8601 UTC strings
with a ``Z`` suffix and millisecond precision on the wire.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any, Final

import attrs

from perfgate.config import DEFAULT_TENANT
from perfgate.jobs.lifecycle import (
    FINAL_STATES,
    PENDING_STATES,
    STATES,
    Effect,
    JobInput,
    JobState,
    finish_input,
    rule,
)

# The states, re-exported under the names the store has always used (the lifecycle's table
# in :mod:`perfgate.jobs.lifecycle` is their one definition).
SCHEDULED: Final = JobState.SCHEDULED
QUEUED: Final = JobState.QUEUED
RUNNING: Final = JobState.RUNNING
RETRYING: Final = JobState.RETRYING
SUCCEEDED: Final = JobState.SUCCEEDED
FAILED: Final = JobState.FAILED
CANCELLED: Final = JobState.CANCELLED
DEAD: Final = JobState.DEAD
#: A job in one of these states is never touched again except by the retention sweep.
FINISHED_STATES: Final = FINAL_STATES
#: The states from which a worker may start an attempt.
STARTABLE_STATES: Final = rule(JobInput.START).from_states

__all__ = [
    "CANCELLED",
    "DEAD",
    "FAILED",
    "FINISHED_STATES",
    "PENDING_STATES",
    "QUEUED",
    "RETRYING",
    "RUNNING",
    "SCHEDULED",
    "STARTABLE_STATES",
    "STATES",
    "SUCCEEDED",
    "JobRecord",
    "JobState",
    "TransitionWrite",
    "finish_fields",
    "iso_utc",
    "new_job_id",
    "transition_write",
]


def finish_fields(
    state: str, *, result: Any, error: Any, cached: bool, now: float
) -> dict[str, Any]:
    """What a final transition writes, whichever journal stores it: the final ``state``, the
    outcome, ``finished_at``, and full progress on success. Raises ``ValueError`` for a state
    that is not final."""
    final = rule(finish_input(state)).to_state
    fields: dict[str, Any] = {
        "state": final,
        "result": result,
        "error": error,
        "cached": cached,
        "finished_at": now,
    }
    if final == SUCCEEDED:
        fields["progress"] = 1.0
    return fields


@attrs.frozen
class TransitionWrite:
    """One transition as a journal writes it: a compare-and-set that applies ``fields`` (the
    new ``state`` among them) only to a job in one of ``from_states``, and adds one to
    ``attempts`` when ``increment_attempts``."""

    from_states: frozenset[JobState]
    fields: dict[str, Any]
    increment_attempts: bool = False


def transition_write(
    job_input: JobInput,
    *,
    now: float,
    result: Any = None,
    error: Any = None,
    cached: bool = False,
) -> TransitionWrite:
    """What ``job_input`` writes, from the lifecycle table's rule for it (its from-states, its
    target state and its :class:`~perfgate.jobs.lifecycle.Effect`). Both journals apply a
    transition through this, so they cannot disagree with the table or with each other."""
    step = rule(job_input)
    fields: dict[str, Any] = {"state": step.to_state}
    if step.effect is Effect.FINISH:
        fields = finish_fields(step.to_state, result=result, error=error, cached=cached, now=now)
    elif step.effect is Effect.BEGIN_ATTEMPT:
        fields["started_at"] = now
    elif step.effect is Effect.KEEP_ERROR:
        fields["error"] = error
    elif step.effect is Effect.REOPEN:
        fields.update(
            result=None, error=None, finished_at=None, progress=0.0, progress_message=None
        )
    return TransitionWrite(
        step.from_states, fields, increment_attempts=step.effect is Effect.BEGIN_ATTEMPT
    )


def new_job_id(now: float | None = None) -> str:
    """A 26-character id: 12 hex digits of milliseconds since the epoch, then 14 random ones.

    Ids sort by creation time (to the millisecond), which keeps the journal's index on
    ``(created_at, id)`` append-mostly; the random part (56 bits) makes collisions negligible.
    """
    millis = int((time.time() if now is None else now) * 1000)
    return f"{millis:012x}{secrets.token_hex(7)}"


def iso_utc(epoch_s: float | None) -> str | None:
    """``1700000000.5`` → ``"2023-11-14T22:13:20.500Z"``; ``None`` stays ``None``."""
    if epoch_s is None:
        return None
    stamp = dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@attrs.frozen
class JobRecord:
    """One job as the journal stores it. Immutable: change it with :func:`attrs.evolve`.

    ``progress`` is the fraction done (0.0 to 1.0) with ``progress_message`` from the last
    ``ctx.progress`` call. ``attempts`` counts started attempts, so a job re-run after a
    restart shows one more attempt than it would have otherwise. ``started_at`` is the start
    of the latest attempt. ``fingerprint`` is internal (idempotency) and not in :meth:`to_json`.
    ``run_at`` is when a delayed job is (or was) due. ``tenant`` owns the job (see :mod:`perfgate.auth`): only it and ``admin`` tokens see it, and
    an ``idempotency_key`` is unique per tenant.
    """

    id: str
    task: str
    args: dict[str, Any]
    state: JobState = attrs.field(default=JobState.QUEUED, converter=JobState)
    priority: str = "normal"
    attempts: int = 0
    progress: float = 0.0
    progress_message: str | None = None
    result: Any = None
    error: Any = None
    created_at: float = attrs.field(factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None
    timeout_s: float | None = None
    max_retries: int = 0
    cached: bool = False
    tenant: str = DEFAULT_TENANT
    #: When a ``scheduled`` job is due (epoch seconds); ``None`` for a job queued at once.
    run_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def to_json(self) -> dict[str, Any]:
        """The job as the HTTP API and the job channels show it (the field names of the README's HTTP API)."""
        return {
            "id": self.id,
            "task": self.task,
            "args": self.args,
            "state": self.state.value,
            "priority": self.priority,
            "attempts": self.attempts,
            "progress": self.progress,
            "progress_message": self.progress_message,
            "result": self.result,
            "error": self.error,
            "created_at": iso_utc(self.created_at),
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at),
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "idempotency_key": self.idempotency_key,
            "cached": self.cached,
            "tenant": self.tenant,
            "run_at": iso_utc(self.run_at),
        }
