"""The HTTP side of :mod:`perfgate.forwarded`: an ASGI wrapper.

Hypercorn's ProxyFixMiddleware trusts a hop *count*, not peer addresses, so this small ASGI
wrapper applies :func:`~perfgate.forwarded.resolve_client` instead (the gateway applies the
same function at its handshake).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from perfgate.forwarded import IPNetwork, parse_networks, resolve_client

__all__ = ["IPNetwork", "TrustedProxyMiddleware", "parse_networks", "resolve_client"]


class TrustedProxyMiddleware:
    """Rewrite ``scope["client"]`` and ``scope["scheme"]`` per :func:`resolve_client`."""

    def __init__(self, app: Any, trusted_proxies: Iterable[str]) -> None:
        self.app = app
        self.trusted = parse_networks(trusted_proxies)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.trusted and scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            host, port = (peer[0], peer[1]) if peer else (None, 0)
            client, scheme = resolve_client(
                host, scope.get("scheme", "http"), scope["headers"], self.trusted
            )
            if client != host or scheme != scope.get("scheme"):
                scope = dict(scope)
                scope["client"] = (client, port)
                scope["scheme"] = scheme
        await self.app(scope, receive, send)
