"""``GET /asyncapi.json``: the WebSocket protocol (perfgate.gateway.protocol) as AsyncAPI 3.0.

Hand-written beside the parser it describes, and kept exact by a test that runs every
message's examples through a live gateway and validates each frame it gets back against the
schemas here (tests/gateway/test_asyncapi.py). Operations are from the server's side: it
*receives* the client's ops and *sends* welcome, ack, error, message and batch frames.
"""

from __future__ import annotations

from typing import Any

from perfgate import __version__
from perfgate.gateway.channels import MAX_CHANNEL_CHARS
from perfgate.gateway.server import WS_PATH

_ID = {
    "description": "optional; echoed in the ack or error that answers this frame",
    "oneOf": [{"type": "string", "maxLength": 128}, {"type": "integer"}],
}
_REPLY_ID = {
    "description": "the id of the frame answered (null when it had none or was unreadable)",
    "oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}],
}
_CHANNEL = {
    "type": "string",
    "maxLength": MAX_CHANNEL_CHARS,
    "description": "letters, digits and _ - . : @ / = +; jobs:{id} carries a job's events "
    "(publish-only for the server); $sys:stats and $sys:alerts need the admin scope",
}


def _client(op: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"op": {"const": op}, **properties, "id": _ID},
        "required": ["op", *required],
    }


def _server(kind: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {"type": {"const": kind}, **properties},
        "required": ["type", *required],
    }


MESSAGE_FRAME = _server(
    "message",
    {
        "channel": {"type": "string"},
        "offset": {
            "type": "integer",
            "minimum": 1,
            "description": "one more than the channel's previous message: a gap is a drop",
        },
        "data": {
            "description": "the published JSON value; on jobs:{id}, "
            '{"event": "state" | "progress" | "log" | "result" | "error", ...}'
        },
    },
    ["channel", "offset", "data"],
)

PAYLOADS: dict[str, dict[str, Any]] = {
    "Subscribe": _client(
        "subscribe",
        {
            "channel": _CHANNEL,
            "since": {
                "type": "integer",
                "minimum": 0,
                "description": "replay retained messages after this offset, then go live",
            },
            "epoch": {
                "type": "string",
                "description": "the epoch of an earlier ack, when resuming with since; "
                "another epoch answers recovered: false",
            },
        },
        ["channel"],
    ),
    "Unsubscribe": _client("unsubscribe", {"channel": _CHANNEL}, ["channel"]),
    "Publish": _client(
        "publish",
        {
            "channel": _CHANNEL,
            "data": {"description": "any JSON value"},
            "priority": {"enum": ["high", "normal"], "description": "high bypasses batching"},
        },
        ["channel", "data"],
    ),
    "Ping": _client("ping", {}, []),
    "Welcome": _server(
        "welcome",
        {
            "session": {"type": "string"},
            "heartbeat_s": {"type": "number", "description": "the first ping interval"},
        },
        ["session", "heartbeat_s"],
    ),
    "Ack": _server(
        "ack",
        {
            "id": _REPLY_ID,
            "channel": {"type": "string"},
            "offset": {
                "type": "integer",
                "minimum": 0,
                "description": "subscribe: the channel's last offset; publish: the new one",
            },
            "epoch": {"type": "string", "description": "subscribe: the channel's history epoch"},
            "recovered": {
                "type": "boolean",
                "description": "subscribe with since: false when history no longer reaches "
                "back that far or the epoch changed (resync from the HTTP API)",
            },
        },
        ["id"],
    ),
    "Error": _server(
        "error",
        {"id": _REPLY_ID, "code": {"type": "string"}, "message": {"type": "string"}},
        ["id", "code", "message"],
    ),
    "Message": MESSAGE_FRAME,
    "Batch": _server(
        "batch",
        {"messages": {"type": "array", "minItems": 1, "items": MESSAGE_FRAME}},
        ["messages"],
    ),
}

EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "Subscribe": [
        {"op": "subscribe", "channel": "news", "id": 1},
        {"op": "subscribe", "channel": "jobs:ID", "since": 0, "id": 2},
    ],
    "Unsubscribe": [{"op": "unsubscribe", "channel": "news", "id": 3}],
    "Publish": [{"op": "publish", "channel": "news", "data": {"any": "json"}, "id": 4}],
    "Ping": [{"op": "ping", "id": 5}],
}

#: Client op -> the server messages that may answer it.
RECEIVED = {
    "Subscribe": ["Ack", "Error"],
    "Unsubscribe": ["Ack", "Error"],
    "Publish": ["Ack", "Error"],
    "Ping": ["Ack", "Error"],
}
SENT = {
    "sendWelcome": (["Welcome"], "The first frame of every connection."),
    "sendMessages": (
        ["Message", "Batch"],
        "Channel messages, one at a time or several per batch frame (within batch_window_ms).",
    ),
    "sendError": (["Error"], "A frame that could not be understood (no op, bad JSON)."),
}

CLOSE_CODES = (
    "Close codes: 1001 server shutting down, 1008 policy (rate), 1009 frame too big, 1011 "
    "internal error, 1013 over capacity, 4008 slow consumer, 4009 heartbeat timeout. The server "
    "sends WebSocket pings (between heartbeat_min_s and heartbeat_max_s apart) and closes with "
    "4009 when no pong comes within pong_timeout_s."
)


def build_asyncapi(*, host: str, auth_enabled: bool) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for a gateway reachable at ``host`` (``HOST:PORT``)."""
    messages = {
        name: {
            "name": name,
            "title": name,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
            **({"examples": [{"payload": e} for e in EXAMPLES[name]]} if name in EXAMPLES else {}),
        }
        for name in PAYLOADS
    }
    channel_ref = {"$ref": "#/channels/gateway"}

    def refs(names: list[str]) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/gateway/messages/{name}"} for name in names]

    operations: dict[str, Any] = {
        f"receive{name}": {
            "action": "receive",
            "channel": channel_ref,
            "summary": f"The client's {name.lower()} op.",
            "messages": refs([name]),
            "reply": {"channel": channel_ref, "messages": refs(RECEIVED[name])},
        }
        for name in RECEIVED
    }
    for op_id, (names, summary) in SENT.items():
        operations[op_id] = {
            "action": "send",
            "channel": channel_ref,
            "summary": summary,
            "messages": refs(names),
        }
    server: dict[str, Any] = {"host": host, "protocol": "ws"}
    components: dict[str, Any] = {"schemas": PAYLOADS, "messages": messages}
    if auth_enabled:
        components["securitySchemes"] = {
            "bearer": {"type": "httpBearer", "description": "Authorization: Bearer TOKEN"},
            "token": {"type": "httpApiKey", "name": "token", "in": "query"},
        }
        server["security"] = [
            {"$ref": "#/components/securitySchemes/bearer"},
            {"$ref": "#/components/securitySchemes/token"},
        ]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "perfgate gateway",
            "version": __version__,
            "description": "Channels over one WebSocket: subscribe (with since/epoch recovery), "
            "publish, and job events on jobs:{id}. " + CLOSE_CODES,
        },
        "defaultContentType": "application/json",
        "servers": {"gateway": server},
        "channels": {
            "gateway": {
                "address": WS_PATH,
                "description": "Every frame, both ways, is one JSON text message.",
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in PAYLOADS},
            }
        },
        "operations": operations,
        "components": components,
    }
