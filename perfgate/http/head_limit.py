"""The size of a request head (request line + headers), checked exactly before the app runs.

Hypercorn hands ``[http] max_header_bytes`` to h11 as ``h11_max_incomplete_size``, but h11 only
applies it to a head that is still *incomplete*: a larger head that arrives whole in one read
(up to 64 KiB on loopback) is parsed and passed on. The server's ASGI wrapper
(:class:`perfgate.http.server.EdgeASGI`) closes that gap with these functions: any head over the
limit is answered ``431`` (a problem document, ``Connection: close``) and never reaches a route.
Either way a client sees 431 and a closed connection, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

#: ``": "`` between name and value, and ``"\r\n"`` after each header line.
_HEADER_OVERHEAD = 4
#: ``"METHOD SP TARGET SP HTTP/x.y CRLF"`` around the method and the target.
_REQUEST_LINE_OVERHEAD = len(" HTTP/1.1\r\n") + 1


def head_bytes(
    method: str, raw_path: bytes, query_string: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> int:
    """The size of the request head as it was on the wire (to within a few bytes). Pure."""
    size = len(method) + len(raw_path) + _REQUEST_LINE_OVERHEAD
    if query_string:
        size += 1 + len(query_string)
    for name, value in headers:
        size += len(name) + len(value) + _HEADER_OVERHEAD
    return size


def _problem(max_header_bytes: int) -> bytes:
    return json.dumps(
        {
            "type": "https://perfgate.dev/problems/header_too_large",
            "title": "Request header fields too large",
            "status": 431,
            "detail": f"the request line and headers are over {max_header_bytes} bytes",
            "code": "header_too_large",
        }
    ).encode()


def too_large(scope: dict[str, Any], max_header_bytes: int) -> bool:
    """True when an HTTP or WebSocket request's head is over ``max_header_bytes``."""
    raw_path = scope.get("raw_path") or scope["path"].encode()
    size = head_bytes(
        scope.get("method", "GET"), raw_path, scope.get("query_string", b""), scope["headers"]
    )
    return size > max_header_bytes


async def refuse(scope: dict[str, Any], send: Any, max_header_bytes: int) -> None:
    """Answer a request whose head is too large: ``431`` (a problem document, ``Connection:
    close``) for HTTP, close code 1009 for a WebSocket handshake."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1009})
        return
    body = _problem(max_header_bytes)
    await send(
        {
            "type": "http.response.start",
            "status": 431,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
