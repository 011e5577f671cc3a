"""A Python client for perfgate: ``Client`` (blocking) and ``AsyncClient`` (trio or asyncio).

    from perfgate.client import Client

    with Client("http://127.0.0.1:8080") as client:
        job = client.submit("echo", {"x": 1})
        print(job.result(timeout=10))   # {'x': 1}

Jobs go over the gateway's WebSocket when it is there (submitted, acked once committed, their
results pushed back), over HTTP otherwise. Every error is a :class:`PerfgateClientError`.
"""

from perfgate.client._async import AsyncClient, AsyncJob
from perfgate.client._errors import (
    BadRequest,
    Conflict,
    EventsLost,
    Forbidden,
    Invalid,
    JobCancelled,
    JobDead,
    JobError,
    JobFailed,
    NotFound,
    PerfgateClientError,
    PerfgateConnectionError,
    PerfgateTimeout,
    ProblemError,
    ProtocolViolation,
    RateLimited,
    ServerError,
    Unauthorized,
    Unavailable,
)
from perfgate.client._events import JobEvent
from perfgate.client._sync import Client, Job

__all__ = [
    "AsyncClient",
    "AsyncJob",
    "BadRequest",
    "Client",
    "Conflict",
    "EventsLost",
    "Forbidden",
    "Invalid",
    "Job",
    "JobCancelled",
    "JobDead",
    "JobError",
    "JobEvent",
    "JobFailed",
    "NotFound",
    "PerfgateClientError",
    "PerfgateConnectionError",
    "PerfgateTimeout",
    "ProblemError",
    "ProtocolViolation",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "Unavailable",
]
