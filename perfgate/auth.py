"""Bearer tokens with scopes, checked on HTTP requests and on WebSocket handshakes.

With no tokens configured (the embedded developer default, loopback only), every request is
allowed every scope. With tokens, a request without one is :class:`Unauthorized` (401) and a
token without the scope it needs is :class:`Forbidden` (403).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import attrs

from perfgate.config import SCOPES
from perfgate.errors import Forbidden, Unauthorized


@attrs.frozen
class Principal:
    """Who is calling and what they may do. ``token_id`` is safe to log (never the token)."""

    token_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def require(self, scope: str) -> None:
        """Raise :class:`Forbidden` unless this principal has ``scope`` (``admin`` has all)."""
        if not self.allows(scope):
            raise Forbidden(f"this token lacks the {scope!r} scope")


ANONYMOUS_OPEN = Principal(token_id="open", scopes=frozenset(SCOPES))


@attrs.frozen
class Authenticator:
    tokens: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def authenticate(self, token: str | None) -> Principal:
        """Map a presented token to a :class:`Principal`; raise :class:`Unauthorized` if bad."""
        if not self.enabled:
            return ANONYMOUS_OPEN
        if not token:
            raise Unauthorized("a bearer token is required")
        for known, scopes in self.tokens.items():
            # Constant-time comparison so that timing does not leak a token's prefix.
            if hmac.compare_digest(known.encode(), token.encode()):
                return Principal(token_id=_token_id(known), scopes=frozenset(scopes))
        raise Unauthorized("unknown token")


def bearer_token(authorization: str | None) -> str | None:
    """Extract the token from an ``Authorization: Bearer TOKEN`` header value."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _token_id(token: str) -> str:
    # Enough to tell tokens apart in a log line, too little to reuse.
    return f"{token[:4]}…"
