"""The HTTP side of :mod:`perfgate.forwarded`: the client and scheme of a request.

Hypercorn's ProxyFixMiddleware trusts a hop *count*, not peer addresses, so the server's one
ASGI wrapper (:mod:`perfgate.http.server`) applies :func:`rewrite_scope`, built on
:func:`~perfgate.forwarded.resolve_client` (the gateway applies the same function at its
handshake).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perfgate.forwarded import IPNetwork, parse_networks, resolve_client

__all__ = ["IPNetwork", "parse_networks", "resolve_client", "rewrite_scope"]


def rewrite_scope(scope: dict[str, Any], trusted: Sequence[IPNetwork]) -> dict[str, Any]:
    """``scope`` with ``client`` and ``scheme`` per :func:`resolve_client` (a copy when they
    change; ``scope`` itself otherwise)."""
    peer = scope.get("client")
    host, port = (peer[0], peer[1]) if peer else (None, 0)
    client, scheme = resolve_client(host, scope.get("scheme", "http"), scope["headers"], trusted)
    if client != host or scheme != scope.get("scheme"):
        scope = dict(scope)
        scope["client"] = (client, port)
        scope["scheme"] = scheme
    return scope
