"""The one place that turns errors into HTTP problem documents (RFC 9457).

A handler raises a :class:`~perfgate.errors.PerfgateError`; Quart's own HTTP errors (unknown
route, wrong method, body too large) come through here too, so every error a client sees is
``application/problem+json`` with the same shape. Anything else is a bug: it is logged with
its traceback and answered with a bare 500 that reveals nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from quart import Response, request
from werkzeug.exceptions import HTTPException

from perfgate.errors import PerfgateError, RateLimited, Unavailable, retry_after_header
from perfgate.logs import log_event

PROBLEM_TYPE = "application/problem+json"
log = logging.getLogger("perfgate.http")


def problem_body(
    status: int, title: str, detail: str, *, code: str, **extra: Any
) -> dict[str, Any]:
    """The RFC 9457 problem document (without ``instance``): one shape for every answer."""
    return {
        "type": f"https://perfgate.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def error_body(error: PerfgateError) -> dict[str, Any]:
    """The problem document of one perfgate error (a batch answers one per item)."""
    return problem_body(error.status, error.title, error.message, code=error.code, **error.extra)


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = problem_body(status, title, detail, code=code)
    with contextlib.suppress(RuntimeError):  # outside a request context (tests)
        body["instance"] = request.path
    body.update(extra)
    response = Response(json.dumps(body), status=status, content_type=PROBLEM_TYPE)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_perfgate_error(error: PerfgateError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited | Unavailable):
        headers["Retry-After"] = retry_after_header(error.retry_after_s)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="perfgate"'
    return problem_response(
        error.status, error.title, error.message, code=error.code, headers=headers, **error.extra
    )


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "too_large",
    415: "unsupported_media_type",
}


def from_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    headers: dict[str, str] = {}
    if status == 405:
        valid = getattr(error, "valid_methods", None)
        if valid:
            headers["Allow"] = ", ".join(sorted(valid))
    detail = error.description or error.name
    if status == 413:
        detail = "request body is over the configured max_body_bytes"
    return problem_response(
        status, error.name, detail, code=_HTTP_CODES.get(status, f"http_{status}"), headers=headers
    )


def from_unexpected(error: BaseException) -> Response:
    log_event(
        log,
        logging.ERROR,
        "unhandled error in request",
        exc_info=error,
        error=type(error).__name__,
        path=_path(),
    )
    return problem_response(
        500, "Internal error", "an unexpected error occurred; it has been logged", code="internal"
    )


def _path() -> str:
    try:
        return request.path
    except RuntimeError:
        return "-"
