"""What the client raises: one hierarchy under :class:`PerfgateClientError`.

Three families: the server could not be reached or answered too late
(:class:`PerfgateConnectionError`, :class:`PerfgateTimeout`); the server refused a call with
a problem document (:class:`ProblemError` and one subclass per status the API uses); a job
ended without a result (:class:`JobFailed`, :class:`JobDead`, :class:`JobCancelled`), carrying
the job and the server's error object as they were sent.
"""

from __future__ import annotations

from typing import Any


class PerfgateClientError(Exception):
    """Every error the client raises."""


class PerfgateConnectionError(PerfgateClientError):
    """The server could not be reached, or the connection broke before an answer came.

    A submit whose connection broke after the frame was sent may or may not have been
    committed: give it an ``idempotency_key`` to make a retry safe."""


class PerfgateTimeout(PerfgateClientError, TimeoutError):
    """A call (or a wait for a job's result) ran out of time."""


class ProtocolViolation(PerfgateClientError):
    """The server sent something the client cannot understand."""


class EventsLost(PerfgateClientError):
    """A job's events could not be resumed after a reconnect: the server's history no longer
    reaches back to the last event seen (or the server restarted). Read the job instead."""


class ProblemError(PerfgateClientError):
    """The server refused the call with an RFC 9457 problem document (or a WebSocket error
    frame with the same fields): ``status``, ``code``, ``detail`` and the whole ``problem``."""

    status: int = 0

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.code: str = str(problem.get("code", ""))
        self.detail: str = str(problem.get("detail") or problem.get("message") or "")
        super().__init__(f"{status} {self.code}: {self.detail}")

    @property
    def errors(self) -> Any:
        """The fields a 422 names (``{"field": "why", ...}``), else None."""
        return self.problem.get("errors")


class BadRequest(ProblemError):
    """400 (and any other 4xx the client has no class for)."""


class Unauthorized(ProblemError):
    """401: no token, or an unknown one."""


class Forbidden(ProblemError):
    """403: the token lacks the scope."""


class NotFound(ProblemError):
    """404: no such job (or not this tenant's)."""


class Conflict(ProblemError):
    """409: an idempotency key reused with another body."""


class Invalid(ProblemError):
    """422: invalid fields, each named in :attr:`errors`."""


class RateLimited(ProblemError):
    """429: rate limit or full queue; :attr:`retry_after_s` is the server's hint."""

    retry_after_s: float | None = None


class Unavailable(ProblemError):
    """503: the server is starting, draining, or a dependency is down."""

    retry_after_s: float | None = None


class ServerError(ProblemError):
    """5xx other than 503."""


class JobError(PerfgateClientError):
    """A job ended without a result. ``job`` is the job's JSON as the server last showed it
    (may be ``None`` when only its events were seen); ``error`` is the server's error object
    (``{"type", "message", "kind", ...}``) or None."""

    def __init__(self, job_id: str, state: str, error: Any, job: Any = None) -> None:
        self.job_id = job_id
        self.state = state
        self.error = error
        self.job = job
        what = ""
        if isinstance(error, dict):
            what = f": {error.get('type', '')}: {error.get('message', '')}"
        super().__init__(f"job {job_id} {state}{what}")


class JobFailed(JobError):
    """The job failed (its last attempt raised, timed out, crashed...)."""


class JobDead(JobFailed):
    """The job failed on its last allowed retry."""


class JobCancelled(JobError):
    """The job was cancelled."""
