"""Who the client really is behind a reverse proxy.

``X-Forwarded-For`` / ``X-Forwarded-Proto`` and RFC 7239 ``Forwarded`` are believed only when
the TCP peer is a trusted proxy (``[http] trusted_proxies``, CIDRs). The client is then the
right-most address in the chain that is *not* itself a trusted proxy: everything to its left
was written by the client and cannot be trusted. Hypercorn's ProxyFixMiddleware trusts a hop
*count*, not peer addresses, so the server's ASGI wrapper does it instead, with
:func:`rewrite_scope`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def _forwarded_pairs(value: str) -> tuple[list[str], str | None]:
    """Parse RFC 7239 ``Forwarded``: the ``for=`` chain and the last ``proto=``."""
    chain: list[str] = []
    proto: str | None = None
    for element in value.split(","):
        for pair in element.split(";"):
            key, _, raw = pair.strip().partition("=")
            raw = raw.strip().strip('"')
            if key.lower() == "for" and raw:
                if raw.startswith("["):  # "[2001:db8::1]:4711"
                    raw = raw[1 : raw.find("]")] if "]" in raw else raw
                elif raw.count(":") == 1:  # "192.0.2.60:8080"
                    raw = raw.split(":")[0]
                chain.append(raw)
            elif key.lower() == "proto" and raw:
                proto = raw.lower()
    return chain, proto


def resolve_client(
    peer: str | None,
    scheme: str,
    headers: Sequence[tuple[bytes, bytes]],
    trusted: Sequence[IPNetwork],
) -> tuple[str | None, str]:
    """Return ``(client_address, scheme)`` for a request from ``peer``. Pure."""
    if peer is None or not trusted or not _is_trusted(peer, trusted):
        return peer, scheme
    chain: list[str] = []
    proto: str | None = None
    forwarded = [v.decode("latin-1") for k, v in headers if k.lower() == b"forwarded"]
    if forwarded:
        chain, proto = _forwarded_pairs(",".join(forwarded))
    else:
        for key, value in headers:
            name = key.lower()
            if name == b"x-forwarded-for":
                chain.extend(p.strip() for p in value.decode("latin-1").split(",") if p.strip())
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[-1].strip().lower()
    client = peer
    for hop in reversed(chain):
        client = hop
        if not _is_trusted(hop, trusted):
            break
    if proto not in ("http", "https", "ws", "wss"):
        proto = None
    return client, proto or scheme


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
