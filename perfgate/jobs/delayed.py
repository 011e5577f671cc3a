"""Delayed jobs: when a submit's job is due, and the timers that wait for it. Pure: no trio,
no I/O; time is an argument.

A submit may carry ``delay_s`` (seconds from now) or ``run_at`` (an RFC 3339 time with its
offset, e.g. ``2030-01-01T09:00:00Z``), not both. The job is created ``scheduled`` and queued
when due (the lifecycle's ``due``); a due time that has already come queues it at once. A
``run_at`` up to :data:`RUN_AT_GRACE_S` in the past is taken as "now" (the client's clock may
run a little behind ours); further back it is refused, since it is most likely a mistake
(a date typed wrong, a time zone missing).

Who waits: with the SQLite journal, :class:`DueTimers` in the job service (re-armed from the
journal at start-up, so a restart neither loses a delayed job nor runs it early); with Redis,
a sorted set by due time that every instance polls with one Lua script, which moves each due
job to its stream exactly once (:mod:`perfgate.redis.scripts.delayed`).
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
from typing import Any, Final

from perfgate.errors import ValidationError

#: How far in the past a ``run_at`` may be and still be taken as "now".
RUN_AT_GRACE_S: Final = 10.0
#: The longest delay: a year.
MAX_DELAY_S: Final = 366 * 86_400.0


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(f"{field}: {message}", errors=[{"field": field, "message": message}])


def parse_rfc3339(text: str, field: str = "run_at") -> float:
    """Epoch seconds of an RFC 3339 date-time with an offset (``Z`` or ``+02:00``); a
    :class:`ValidationError` naming ``field`` for anything else (a naive time is refused: it
    would mean a different instant on each server)."""
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(field, "not an RFC 3339 date-time (e.g. 2030-01-01T09:00:00Z)") from None
    if "T" not in text.upper() or stamp.tzinfo is None:
        raise _invalid(field, "give a date, a time and an offset (e.g. 2030-01-01T09:00:00Z)")
    return stamp.timestamp()


def due_time(request: dict[str, Any], now: float) -> float | None:
    """When the job of a parsed submit body is due (epoch seconds), or ``None`` to queue it
    at once. Refuses ``delay_s`` and ``run_at`` together, a ``run_at`` further than
    :data:`RUN_AT_GRACE_S` in the past, and one more than :data:`MAX_DELAY_S` ahead."""
    delay_s, run_at = request.get("delay_s"), request.get("run_at")
    if delay_s is not None and run_at is not None:
        raise ValidationError(
            "give delay_s or run_at, not both",
            errors=[
                {"field": "delay_s", "message": "not with run_at"},
                {"field": "run_at", "message": "not with delay_s"},
            ],
        )
    if delay_s is not None:
        return now + float(delay_s) if delay_s > 0 else None
    if run_at is None:
        return None
    due = parse_rfc3339(run_at)
    if due < now - RUN_AT_GRACE_S:
        raise _invalid("run_at", f"is in the past (more than {RUN_AT_GRACE_S:g}s ago)")
    if due > now + MAX_DELAY_S:
        raise _invalid("run_at", f"is more than {MAX_DELAY_S / 86_400:g} days ahead")
    return due if due > now else None


class DueTimers:
    """Jobs waiting for their due time: ``arm``, ``disarm``, and ``pop_due(now)``, soonest
    first. A heap with lazy deletion: ``disarm`` is O(1), and stale entries are dropped as
    they surface."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._due

    def arm(self, job_id: str, due_s: float) -> None:
        due_s = due_s if math.isfinite(due_s) else 0.0
        self._due[job_id] = due_s
        heapq.heappush(self._heap, (due_s, job_id))

    def disarm(self, job_id: str) -> None:
        self._due.pop(job_id, None)

    def _settle(self) -> None:
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    def next_due(self) -> float | None:
        """The soonest due time armed, or ``None``."""
        self._settle()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[str]:
        """Disarm and return the jobs due at ``now``, soonest first."""
        out: list[str] = []
        while True:
            self._settle()
            if not self._heap or self._heap[0][0] > now:
                return out
            _, job_id = heapq.heappop(self._heap)
            del self._due[job_id]
            out.append(job_id)
