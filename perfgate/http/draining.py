"""While the service drains, every HTTP/1 response says ``Connection: close``.

During a graceful stop the listener stays open (new connections are answered: ``/readyz``,
submits and publishes with 503 and ``Retry-After``; reads and long-polls as usual), so a proxy
or client is told, not refused. But a kept-alive connection should not outlive the drain: each
response sent while draining carries ``Connection: close``, so h11 closes the connection once
it is written and the client opens its next one elsewhere (or here again, to be told 503).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_CLOSE: tuple[bytes, bytes] = (b"connection", b"close")


def close_header(headers: Any) -> list[tuple[bytes, bytes]]:
    """``headers`` with any ``Connection`` header replaced by ``Connection: close``."""
    kept = [(name, value) for name, value in headers if bytes(name).lower() != b"connection"]
    return [*kept, _CLOSE]


class CloseWhileDrainingMiddleware:
    """Add ``Connection: close`` to HTTP/1 responses started while ``closing()`` is true.

    HTTP/2 has no such header (it closes with GOAWAY, which Hypercorn sends when the server
    stops), so its responses pass through unchanged.
    """

    def __init__(self, app: Any, closing: Callable[[], bool]) -> None:
        self.app = app
        self.closing = closing

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("http_version") not in ("1.0", "1.1"):
            await self.app(scope, receive, send)
            return

        async def send_closing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and self.closing():
                message = {**message, "headers": close_header(message.get("headers", ()))}
            await send(message)

        await self.app(scope, receive, send_closing)
