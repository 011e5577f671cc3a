"""What both journals (SQLite and Redis) derive from their one ``apply``: the named
transitions the job service calls, and the progress value they record. Pure bookkeeping:
each journal keeps its own ``apply`` (the one place it changes a job's state; see
docs/architecture.md §3)."""

from __future__ import annotations

import math
from typing import Any, Protocol

from perfgate.jobs.lifecycle import JobInput, finish_input
from perfgate.store.record import JobRecord


class _Applies(Protocol):
    async def apply(
        self,
        job_id: str,
        job_input: JobInput,
        *,
        result: Any = None,
        error: Any = None,
        cached: bool = False,
    ) -> JobRecord | None: ...


class TransitionShortcuts:
    """``mark_running``, ``mark_retrying``, ``mark_finished`` and ``cancel`` in terms of the
    journal's ``apply``. Each returns the updated job, or ``None`` when the lifecycle table
    refuses the move in the job's current state (the first final state wins), and raises
    :class:`~perfgate.errors.NotFound` for an unknown job."""

    async def mark_running(self: _Applies, job_id: str) -> JobRecord | None:
        """``queued``/``retrying`` → ``running``: one more attempt, ``started_at`` = now.
        ``None`` means the job may not start (it was cancelled meanwhile): skip it."""
        return await self.apply(job_id, JobInput.START)

    async def mark_retrying(self: _Applies, job_id: str, *, error: Any) -> JobRecord | None:
        """``running`` → ``retrying``, keeping the attempt's ``error``; ``None`` if not running."""
        return await self.apply(job_id, JobInput.RETRY, error=error)

    async def mark_finished(
        self: _Applies,
        job_id: str,
        state: str,
        *,
        result: Any = None,
        error: Any = None,
        cached: bool = False,
    ) -> JobRecord | None:
        """Any unfinished state → ``state`` (succeeded, failed, cancelled or dead). ``None``
        means the job had already finished (so a job cancelled while running stays cancelled
        whatever its worker reports afterwards). Raises ``ValueError`` for a ``state`` that is
        not final."""
        job_input = finish_input(state)
        return await self.apply(job_id, job_input, result=result, error=error, cached=cached)

    async def cancel(self: _Applies, job_id: str) -> JobRecord | None:
        """Mark an unfinished job cancelled; ``None`` if it had finished already."""
        return await self.apply(job_id, JobInput.CANCEL)


def progress_value(fraction: float, message: str | None) -> tuple[float, str | None]:
    """A progress report as a journal records it: the fraction clamped to 0..1 (not a
    number: 0), the message as text. Checked before it is queued: one bad event must never
    fail a whole batch."""
    value = float(fraction)
    value = min(1.0, max(0.0, value)) if math.isfinite(value) else 0.0
    return value, None if message is None else str(message)
