"""The client half of the WebSocket protocol (docs/architecture.md §4) that the scenarios need.

:func:`payloads` is pure (frame text -> the ``data`` of each delivered message), so the
batch/message handling is tested without a socket.
"""

from __future__ import annotations

import json
from typing import Any

from trio_websocket import WebSocketConnection


class ServerReplyError(Exception):
    """The server sent something the protocol does not allow here."""


def payloads(frame: str | bytes) -> list[Any]:
    """The ``data`` of every message a server frame delivers (none for acks, welcomes...).

    ``{"type": "message", "data": D}`` gives ``[D]``; ``{"type": "batch", "messages": [...]}``
    gives each message's ``data`` in order. Raises :class:`ServerReplyError` on non-JSON.
    """
    try:
        obj = json.loads(frame)
    except ValueError as exc:
        raise ServerReplyError(f"frame is not JSON: {frame[:80]!r}") from exc
    if not isinstance(obj, dict):
        raise ServerReplyError("frame is not a JSON object")
    kind = obj.get("type")
    if kind == "message":
        return [obj.get("data")]
    if kind == "batch":
        return [m.get("data") for m in obj.get("messages", []) if isinstance(m, dict)]
    return []


async def subscribe(ws: WebSocketConnection, channel: str, request_id: str) -> None:
    """Subscribe and wait for the matching ack; frames before it (welcome) are skipped.

    Raises :class:`ServerReplyError` on an error reply.
    """
    await ws.send_message(json.dumps({"op": "subscribe", "channel": channel, "id": request_id}))
    while True:
        obj = json.loads(await ws.get_message())
        if obj.get("id") != request_id:
            continue
        if obj.get("type") == "ack":
            return
        raise ServerReplyError(f"subscribe {channel}: {obj}")
