"""Bearer tokens with scopes, checked on HTTP requests and on WebSocket handshakes.

With no tokens configured (the embedded developer default, loopback only), every request is
allowed every scope. With tokens, a request without one is :class:`Unauthorized` (401) and a
token without the scope it needs is :class:`Forbidden` (403).

Tenancy: every principal belongs to a tenant, and so does every job it submits. A token names
its tenant in ``[auth] tokens`` or is its own tenant (:func:`token_tenant`); with no tokens
there is one tenant, :data:`~perfgate.config.DEFAULT_TENANT`. A principal without ``admin``
sees only its tenant's jobs (:attr:`Principal.tenant_filter`); another tenant's job is "not
found", so that a job id says nothing about whether it exists.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import attrs

from perfgate.config import DEFAULT_TENANT, SCOPES, TokenGrant
from perfgate.errors import Forbidden, Unauthorized


@attrs.frozen
class Principal:
    """Who is calling, what they may do and whose jobs they act on. ``token_id`` is safe to
    log (never the token); so is ``tenant``."""

    token_id: str
    scopes: frozenset[str]
    tenant: str = DEFAULT_TENANT

    @property
    def tenant_filter(self) -> str | None:
        """The only tenant whose jobs this principal may see; ``None`` (every tenant) for
        ``admin``."""
        return None if "admin" in self.scopes else self.tenant

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def require(self, scope: str) -> None:
        """Raise :class:`Forbidden` unless this principal has ``scope`` (``admin`` has all)."""
        if not self.allows(scope):
            raise Forbidden(f"this token lacks the {scope!r} scope")


ANONYMOUS_OPEN = Principal(token_id="open", scopes=frozenset(SCOPES), tenant=DEFAULT_TENANT)


def _grants(tokens: Mapping[str, TokenGrant | tuple[str, ...]]) -> dict[str, TokenGrant]:
    return {k: TokenGrant.from_config(v, "tokens") for k, v in tokens.items()}


@attrs.frozen
class Authenticator:
    """``tokens`` maps each token to its :class:`~perfgate.config.TokenGrant` (a bare tuple of
    scopes is accepted too: the token is then its own tenant)."""

    tokens: Mapping[str, TokenGrant] = attrs.field(factory=dict, converter=_grants)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def authenticate(self, token: str | None) -> Principal:
        """Map a presented token to a :class:`Principal`; raise :class:`Unauthorized` if bad."""
        if not self.enabled:
            return ANONYMOUS_OPEN
        if not token:
            raise Unauthorized("a bearer token is required")
        for known, grant in self.tokens.items():
            # Constant-time comparison so that timing does not leak a token's prefix.
            if hmac.compare_digest(known.encode(), token.encode()):
                return Principal(
                    token_id=_token_id(known),
                    scopes=frozenset(grant.scopes),
                    tenant=grant.tenant or token_tenant(known),
                )
        raise Unauthorized("unknown token")


def token_tenant(token: str) -> str:
    """The tenant of a token that names none: ``tok-`` and 16 hex digits of a hash of the
    token. Stable across restarts and instances (jobs in the journal keep their owner), safe to
    show and to log, and not the token."""
    digest = hashlib.sha256(b"perfgate tenant\0" + token.encode()).hexdigest()
    return f"tok-{digest[:16]}"


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
