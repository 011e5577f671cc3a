"""The error hierarchy: every error perfgate raises on purpose is a :class:`PerfgateError`.

One place maps them to HTTP problem documents (:mod:`perfgate.http.problems`) and one to
WebSocket error frames (:mod:`perfgate.gateway.protocol`); the WebSocket close codes the
gateway ends a connection with are the table :data:`WS_CLOSE_CODES` at the end. Each class carries the HTTP status
and a short machine-readable ``code`` so that neither mapping needs an ``isinstance`` ladder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Final


class PerfgateError(Exception):
    """Base class. ``code`` is stable and machine-readable; the message is for people."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class ConfigError(PerfgateError):
    """Invalid configuration: reported as one line on stderr, exit status 2."""

    code = "config"
    title = "Invalid configuration"


class BadRequest(PerfgateError):
    status = 400
    code = "bad_request"
    title = "Malformed request"


class Unauthorized(PerfgateError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class Forbidden(PerfgateError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(PerfgateError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(PerfgateError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(PerfgateError):
    status = 413
    code = "too_large"
    title = "Payload too large"


class UnsupportedMediaType(PerfgateError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class ValidationError(PerfgateError):
    status = 422
    code = "invalid"
    title = "Invalid fields"


class RateLimited(PerfgateError):
    """Too many requests; ``retry_after_s`` says when to come back."""

    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, message: str, *, retry_after_s: float, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.retry_after_s = retry_after_s


def retry_after_header(retry_after_s: float) -> str:
    """The ``Retry-After`` value for ``retry_after_s``: whole seconds, at least 1."""
    return str(max(1, math.ceil(retry_after_s)))


class QueueFull(RateLimited):
    code = "queue_full"
    title = "Job queue full"


class Unavailable(PerfgateError):
    """The service is not accepting work (starting, draining, or a dependency is down)."""

    status = 503
    code = "unavailable"
    title = "Service unavailable"

    def __init__(self, message: str, *, retry_after_s: float = 1.0, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.retry_after_s = retry_after_s


class TooManyChannels(Unavailable):
    """The hub holds ``[gateway] max_channels`` channels: no new one until some expire."""

    code = "too_many_channels"
    title = "Too many channels"


WS_CLOSE_CODES: Final[Mapping[str, int]] = MappingProxyType(
    {
        "server shutting down": 1001,
        "rate limit exceeded": 1008,
        "internal error": 1011,
        "slow consumer": 4008,
        "heartbeat timeout": 4009,
    }
)
"""Why the gateway closes a connection (the close frame's reason) -> its close code
(RFC 6455 §7.4.1; 4xxx are perfgate's own). The one table: a close is asked for by reason."""
