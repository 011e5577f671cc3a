"""Write a job's state change until the journal takes it.

A state change that cannot be written for want of the disk (``database or disk is full``,
ENOSPC) or of Redis must not be dropped: dropping it left the job unfinished until a restart
(one job in 21, in a full-disk test). :func:`write_durably` retries it with back-off instead,
and logs the failure once, without a traceback: its cause is outside the process.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import trio

from perfgate.errors import Unavailable
from perfgate.logs import log_event
from perfgate.pool.backoff import backoff_delay_s

log = logging.getLogger("perfgate.jobs")

T = TypeVar("T")

#: What a journal write raises when the disk or the broker, not the request, is at fault.
JOURNAL_FAILURES: Final[tuple[type[Exception], ...]] = (Unavailable, OSError, sqlite3.Error)
RETRY_BASE_S: Final = 0.05
RETRY_CAP_S: Final = 2.0


async def write_durably(
    write: Callable[..., Awaitable[T]], *args: Any, job_id: str, state: str
) -> T:
    """``await write(*args)``, retried after each :data:`JOURNAL_FAILURES` error with full-
    jitter exponential back-off (:data:`RETRY_BASE_S` doubling to :data:`RETRY_CAP_S`) until
    it succeeds. Other errors propagate at once.

    Cancellation ends the retrying (a stop): the caller applies the change again later, or
    the next start recovers the job; a journal refuses a transition made twice.
    """
    failures = 0
    while True:
        try:
            result = await write(*args)
        except JOURNAL_FAILURES as exc:
            failures += 1
            if failures == 1:
                log_event(
                    log,
                    logging.WARNING,
                    "job state not written; retrying",
                    job=job_id,
                    state=state,
                    error=str(exc),
                )
            await trio.sleep(backoff_delay_s(failures, base_s=RETRY_BASE_S, cap_s=RETRY_CAP_S))
            continue
        if failures:
            log_event(
                log, logging.INFO, "job state written", job=job_id, state=state, tries=failures + 1
            )
        return result
