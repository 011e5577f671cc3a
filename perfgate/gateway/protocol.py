"""The WebSocket message protocol, sans I/O: parse client frames, build server frames.

Client frames are JSON objects with an ``op`` and an optional ``id`` (echoed in the reply).
Parsing never raises for bad input: it returns a :class:`BadFrame` (a value, not an exception) carrying the ``id``
when one could be read, so that the reply can still be matched. Server frames are built as
``str`` here and nowhere else; a channel message is encoded once per fan-out and cached on
the shared :class:`~perfgate.broker.Message`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from perfgate import jsontext
from perfgate.broker import PRIORITIES, Message
from perfgate.errors import PerfgateError

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

RequestId = int | str | None


@attrs.frozen
class Subscribe:
    id: RequestId
    channel: Any
    since: int | None = None
    epoch: str | None = None


@attrs.frozen
class Unsubscribe:
    id: RequestId
    channel: Any


@attrs.frozen
class Publish:
    id: RequestId
    channel: Any
    data: Any
    priority: str = "normal"


@attrs.frozen
class Ping:
    id: RequestId


@attrs.frozen
class Submit:
    """A job to submit: ``body`` is the frame without ``op`` and ``id``, the same fields as
    an HTTP ``POST /v1/jobs`` body (the job service validates it)."""

    id: RequestId
    body: dict[str, Any]


@attrs.frozen
class BadFrame:
    """A frame that could not be understood; ``id`` is set when the frame carried one."""

    id: RequestId
    code: str
    message: str


Op = Subscribe | Unsubscribe | Publish | Ping | Submit


def _request_id(value: Any) -> RequestId | BadFrame:
    if value is None or (isinstance(value, str | int) and not isinstance(value, bool)):
        if isinstance(value, str) and len(value) > 128:
            return BadFrame(None, "bad_request", "id: at most 128 characters")
        return value
    return BadFrame(None, "bad_request", "id must be a string or an integer")


def parse(frame: str | bytes) -> Op | BadFrame:
    """Parse one client frame. Never raises."""
    if isinstance(frame, bytes):
        return BadFrame(None, "bad_request", "binary frames are not supported; send JSON text")
    try:
        obj = jsontext.loads(frame)
    except jsontext.JsonTextError as exc:
        # Refused before anything is published: a value that cannot be encoded again
        # (NaN, a lone surrogate) would be acked with an offset and then never delivered.
        return BadFrame(None, "bad_request", f"not valid JSON: {exc}"[:200])
    if not isinstance(obj, dict):
        return BadFrame(None, "bad_request", "a frame must be a JSON object")
    rid = _request_id(obj.get("id"))
    if isinstance(rid, BadFrame):
        return rid
    op = obj.get("op")
    if op == "ping":
        return Ping(rid)
    if op == "subscribe":
        since = obj.get("since")
        if since is not None and (
            not isinstance(since, int) or isinstance(since, bool) or since < 0
        ):
            return BadFrame(rid, "invalid", "since must be a non-negative integer")
        epoch = obj.get("epoch")
        if epoch is not None and not isinstance(epoch, str):
            return BadFrame(rid, "invalid", "epoch must be a string")
        return Subscribe(rid, obj.get("channel"), since, epoch)
    if op == "unsubscribe":
        return Unsubscribe(rid, obj.get("channel"))
    if op == "publish":
        if "data" not in obj:
            return BadFrame(rid, "invalid", "publish needs 'data'")
        priority = obj.get("priority", "normal")
        if priority not in PRIORITIES:
            return BadFrame(rid, "invalid", f"priority must be one of {list(PRIORITIES)}")
        return Publish(rid, obj.get("channel"), obj["data"], priority)
    if op == "submit":
        return Submit(rid, {k: v for k, v in obj.items() if k not in ("op", "id")})
    if op is None:
        return BadFrame(rid, "bad_request", "missing 'op'")
    return BadFrame(rid, "unknown_op", f"unknown op {str(op)[:64]!r}")


# -- server frames ----------------------------------------------------------------------------


def welcome(session: str, heartbeat_s: float) -> str:
    return _dumps({"type": "welcome", "session": session, "heartbeat_s": heartbeat_s})


def ack(request_id: RequestId, **fields: Any) -> str:
    return _dumps({"type": "ack", "id": request_id, **fields})


def error(request_id: RequestId, code: str, message: str) -> str:
    return _dumps({"type": "error", "id": request_id, "code": code, "message": message})


def error_from(request_id: RequestId, exc: PerfgateError) -> str:
    """The one place a :class:`PerfgateError` becomes a WebSocket error frame: its ``code``
    (the same as the HTTP problem's), message, and details (e.g. ``errors`` naming each
    invalid field), as the problem document carries them."""
    return _dumps(
        {**exc.extra, "type": "error", "id": request_id, "code": exc.code, "message": exc.message}
    )


def message_frame(message: Message) -> str:
    """The ``message`` frame for ``message`` as text. A message is held encoded (see
    :class:`~perfgate.broker.Message`): this decodes it, for connections that cannot take
    the shared frame bytes. Size a message with ``message.size_bytes``, not with this."""
    return message.frame


def batch_frame(frames: Sequence[str]) -> str:
    """Coalesce already-encoded ``message`` frames into one ``batch`` frame, without
    decoding them again."""
    return '{"type":"batch","messages":[' + ",".join(frames) + "]}"
