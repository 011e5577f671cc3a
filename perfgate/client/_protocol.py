"""The client's protocol logic, sans I/O: HTTP requests and answers, WebSocket frames, job
outcomes, and the cursor that makes a job's events gapless across reconnects.

Nothing here touches a socket or a clock; the shells (``_http``, ``_ws``) move bytes and
time. Bad input from the server never escapes as a ``KeyError``: it becomes
:class:`ProtocolViolation` or a typed :class:`ProblemError`.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import attrs

from perfgate.client import _errors as e

FINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "dead"})

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

#: Problem ``code`` (as an error frame carries it) to the class raised for it.
_BY_CODE: dict[str, type[e.ProblemError]] = {
    "bad_request": e.BadRequest,
    "unauthorized": e.Unauthorized,
    "forbidden": e.Forbidden,
    "not_found": e.NotFound,
    "conflict": e.Conflict,
    "invalid": e.Invalid,
    "rate_limited": e.RateLimited,
    "queue_full": e.RateLimited,
    "unavailable": e.Unavailable,
    "too_many_channels": e.Unavailable,
}
_BY_STATUS: dict[int, type[e.ProblemError]] = {
    400: e.BadRequest,
    401: e.Unauthorized,
    403: e.Forbidden,
    404: e.NotFound,
    409: e.Conflict,
    422: e.Invalid,
    429: e.RateLimited,
    503: e.Unavailable,
}
_STATUS_OF = {cls: status for status, cls in _BY_STATUS.items()}


# -- where the server is ------------------------------------------------------------------------


@attrs.frozen
class Endpoint:
    """A parsed ``http(s)://`` or ``ws(s)://`` URL: what a connection needs."""

    tls: bool
    host: str
    port: int
    path: str  # the base path, without a trailing slash ("" at the root)

    @property
    def host_header(self) -> str:
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_endpoint(url: str, *, schemes: tuple[str, str] = ("http", "https")) -> Endpoint:
    """Parse a base URL; ``schemes`` are (plain, TLS). Raises ValueError naming the problem."""
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ValueError(f"url must start with {schemes[0]}:// or {schemes[1]}://: {url!r}")
    if not parts.hostname:
        raise ValueError(f"url has no host: {url!r}")
    tls = parts.scheme == schemes[1]
    return Endpoint(tls, parts.hostname, parts.port or (443 if tls else 80), parts.path.rstrip("/"))


def resolve_ws_url(base: Endpoint, advertised: Any) -> Endpoint:
    """Where the gateway is, from ``GET /v1/info``'s ``ws``: an absolute ``ws(s)://`` URL, or
    a path (``/ws``) on the HTTP base URL's host, as behind a proxy serving both."""
    if not isinstance(advertised, str) or not advertised:
        raise e.ProtocolViolation(f"/v1/info has no usable 'ws': {advertised!r}")
    if advertised.startswith("/"):
        return Endpoint(base.tls, base.host, base.port, advertised)
    try:
        return parse_endpoint(advertised, schemes=("ws", "wss"))
    except ValueError as exc:
        raise e.ProtocolViolation(f"/v1/info 'ws': {exc}") from None


# -- HTTP ---------------------------------------------------------------------------------------


@attrs.frozen
class HttpRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


def build_request(
    endpoint: Endpoint,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    query: dict[str, Any] | None = None,
) -> HttpRequest:
    """An HTTP/1.1 request with a JSON body (when ``body`` is not None)."""
    target = endpoint.path + path
    if query:
        target += "?" + urlencode({k: v for k, v in query.items() if v is not None})
    headers = [("Host", endpoint.host_header), ("Accept", "application/json")]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    data = b""
    if body is not None:
        data = _dumps(body).encode()
        headers.append(("Content-Type", "application/json"))
    if body is not None or method in ("POST", "PUT", "PATCH"):
        headers.append(("Content-Length", str(len(data))))
    return HttpRequest(method, target, headers, data)


def job_path(job_id: str) -> str:
    return "/v1/jobs/" + quote(job_id, safe="")


def problem_error(
    status: int, problem: dict[str, Any], retry_after_s: float | None = None
) -> e.ProblemError:
    """The typed exception for a refused call."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = e.ServerError if status >= 500 else e.BadRequest
    error = cls(status, problem)
    if isinstance(error, e.RateLimited | e.Unavailable):
        error.retry_after_s = retry_after_s
    return error


def decode_response(status: int, headers: list[tuple[str, str]], body: bytes) -> Any:
    """The JSON of a 2xx answer; a typed :class:`ProblemError` for anything else."""
    try:
        value = json.loads(body) if body else None
    except ValueError:
        value = None
        if 200 <= status < 300:
            raise e.ProtocolViolation(f"HTTP {status} with a body that is not JSON") from None
    if 200 <= status < 300:
        return value
    problem = (
        value if isinstance(value, dict) else {"detail": body[:200].decode("utf-8", "replace")}
    )
    retry_after_s = None
    for name, raw in headers:
        if name.lower() == "retry-after":
            with contextlib.suppress(ValueError):
                retry_after_s = float(raw)
    raise problem_error(status, problem, retry_after_s)


# -- WebSocket frames ---------------------------------------------------------------------------


def submit_body(
    task: str,
    args: Any = None,
    *,
    priority: str | None = None,
    timeout_s: float | None = None,
    max_retries: int | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """A ``POST /v1/jobs`` body (and the fields of a ``submit`` frame); unset fields are left
    out so the server's defaults apply."""
    body: dict[str, Any] = {"task": task}
    for key, value in (
        ("args", args),
        ("priority", priority),
        ("timeout_s", timeout_s),
        ("max_retries", max_retries),
        ("idempotency_key", idempotency_key),
    ):
        if value is not None:
            body[key] = value
    return body


def submit_frame(request_id: int, body: dict[str, Any]) -> str:
    return _dumps({**body, "op": "submit", "id": request_id})


def subscribe_frame(request_id: int, channel: str, since: int, epoch: str | None) -> str:
    frame: dict[str, Any] = {
        "op": "subscribe",
        "channel": channel,
        "since": since,
        "id": request_id,
    }
    if epoch is not None:
        frame["epoch"] = epoch
    return _dumps(frame)


@attrs.frozen
class Reply:
    """An ``ack`` (``ok``) or ``error`` frame answering request ``id``."""

    id: Any
    ok: bool
    fields: dict[str, Any]


@attrs.frozen
class ChannelMessage:
    channel: str
    offset: int
    data: Any


ServerFrame = Reply | ChannelMessage


def parse_frame(text: str) -> list[ServerFrame]:
    """The replies and channel messages in one server frame (a ``batch`` holds several);
    ``welcome``, ``pong`` and unknown types are nothing to act on."""
    try:
        obj = json.loads(text)
    except ValueError:
        raise e.ProtocolViolation(f"frame is not JSON: {text[:80]!r}") from None
    if not isinstance(obj, dict):
        raise e.ProtocolViolation(f"frame is not an object: {text[:80]!r}")
    kind = obj.get("type")
    if kind in ("ack", "error"):
        return [Reply(obj.get("id"), kind == "ack", obj)]
    if kind == "message":
        return [_message(obj)]
    if kind == "batch":
        messages = obj.get("messages")
        if not isinstance(messages, list):
            raise e.ProtocolViolation("batch frame without a messages list")
        return [_message(m) for m in messages]
    return []


def _message(obj: Any) -> ChannelMessage:
    if not isinstance(obj, dict):
        raise e.ProtocolViolation("message is not an object")
    channel, offset = obj.get("channel"), obj.get("offset")
    if not isinstance(channel, str) or not isinstance(offset, int) or isinstance(offset, bool):
        raise e.ProtocolViolation(f"message without channel/offset: {str(obj)[:80]}")
    return ChannelMessage(channel, offset, obj.get("data"))


def frame_error(fields: dict[str, Any]) -> e.ProblemError:
    """The typed exception for an ``error`` frame (its ``code`` is the problem's)."""
    cls = _BY_CODE.get(str(fields.get("code")), e.BadRequest)
    problem = {k: v for k, v in fields.items() if k not in ("type", "id")}
    problem.setdefault("detail", fields.get("message", ""))
    return cls(_STATUS_OF.get(cls, 400), problem)


# -- jobs ---------------------------------------------------------------------------------------


def is_final_event(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and data.get("event") == "state"
        and data.get("state") in FINAL_STATES
    )


def job_error(job_id: str, state: str, error: Any, job: Any = None) -> e.JobError:
    cls: type[e.JobError] = {
        "dead": e.JobDead,
        "cancelled": e.JobCancelled,
    }.get(state, e.JobFailed)
    return cls(job_id, state, error, job)


def job_outcome(job: Any) -> Any:
    """The result of a finished job (its JSON as the API shows it), or raise its
    :class:`JobError`. Call only for a job in a final state."""
    if not isinstance(job, dict) or job.get("state") not in FINAL_STATES:
        raise e.ProtocolViolation(f"not a finished job: {str(job)[:80]}")
    if job["state"] == "succeeded":
        return job.get("result")
    raise job_error(str(job.get("id")), job["state"], job.get("error"), job)


def job_of(value: Any) -> dict[str, Any]:
    """A job's JSON from an answer, checked for the fields the client relies on."""
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise e.ProtocolViolation(f"expected a job, got {str(value)[:80]}")
    return value


@attrs.define
class EventCursor:
    """Where a reader of one channel is: the last offset delivered and the channel's epoch.

    :meth:`admit` lets each offset through once (a resubscribe with ``since`` may replay the
    seam), and :meth:`resubscribe` gives the ``since``/``epoch`` to resume with, so the events a
    reader sees are gapless and without duplicates across any number of reconnects."""

    offset: int = 0
    epoch: str | None = None

    def admit(self, offset: int) -> bool:
        if offset <= self.offset:
            return False
        self.offset = offset
        return True

    def acknowledged(self, ack: dict[str, Any]) -> None:
        """Note a subscribe ``ack``. Raises :class:`EventsLost` when the server could not
        replay from our offset (``recovered: false``) after we had seen something."""
        epoch = ack.get("epoch")
        if ack.get("recovered") is False and self.offset > 0:
            raise e.EventsLost(
                f"history no longer reaches offset {self.offset} (epoch {self.epoch} -> {epoch})"
            )
        if isinstance(epoch, str):
            self.epoch = epoch

    def resubscribe(self) -> tuple[int, str | None]:
        return self.offset, self.epoch


@attrs.define
class FramePace:
    """A token bucket for the frames sent on one WebSocket, kept under the gateway's
    per-connection limit (``ws_rate_limit_per_s`` in ``GET /v1/info``; above it the server
    closes with 1008). Refills at ``share`` of that rate, holds half a second's worth, starts
    full; ``rate_per_s`` 0 means no limit. Time is an argument (``now`` in seconds)."""

    rate_per_s: float
    share: float = 0.8
    tokens: float = attrs.field(init=False)
    updated_at: float | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self.tokens = self.capacity

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate_per_s * self.share / 2)

    def room(self, now: float) -> float:
        """How many frames may go now (``inf`` without a limit)."""
        if self.rate_per_s <= 0:
            return float("inf")
        if self.updated_at is not None:
            elapsed = max(0.0, now - self.updated_at)
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s * self.share)
        self.updated_at = now
        return self.tokens

    def take(self, now: float) -> bool:
        """Spend one frame's token if there is one."""
        if self.room(now) == float("inf"):
            return True
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def submit_pace(info: Any) -> FramePace:
    """The pace of ``submit`` frames on a gateway, from ``GET /v1/info``: none when it says
    ``ws_submits_in_flight`` (submits are paced by the server, by those in flight: TCP pushes
    back), else its frame limit ``ws_rate_limit_per_s`` (a server closing the connection
    over it), else the gateway's default limit."""
    info = info if isinstance(info, dict) else {}
    if _is_number(info.get("ws_submits_in_flight")):
        return FramePace(0.0)
    rate = info.get("ws_rate_limit_per_s")
    if _is_number(rate) and rate >= 0:
        return FramePace(float(rate))
    return FramePace(100.0)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
