"""While the service drains, every HTTP/1 response says ``Connection: close``.

During a graceful stop the listener stays open (new connections are answered: ``/readyz``,
submits and publishes with 503 and ``Retry-After``; reads and long-polls as usual), so a proxy
or client is told, not refused. But a kept-alive connection should not outlive the drain: each
response sent while draining carries ``Connection: close``, so h11 closes the connection once
it is written and the client opens its next one elsewhere (or here again, to be told 503).
HTTP/2 has no such header (it closes with GOAWAY, which Hypercorn sends when the server stops),
so its responses pass through unchanged. The server's ASGI wrapper
(:class:`perfgate.http.server.EdgeASGI`) applies :func:`close_header`.
"""

from __future__ import annotations

from typing import Any

_CLOSE: tuple[bytes, bytes] = (b"connection", b"close")


def close_header(headers: Any) -> list[tuple[bytes, bytes]]:
    """``headers`` with any ``Connection`` header replaced by ``Connection: close``."""
    kept = [(name, value) for name, value in headers if bytes(name).lower() != b"connection"]
    return [*kept, _CLOSE]
