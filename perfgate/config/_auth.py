"""``[auth]``: tokens, what each may do (scopes) and whose jobs it acts on (its tenant)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from perfgate.errors import ConfigError

SCOPES = frozenset({"submit", "publish", "subscribe", "metrics", "admin"})
_TOKEN = re.compile(r"[\x21-\x7e]+")
#: The tenant of every job when no tokens are configured, and of jobs journalled before
#: tenants existed (only ``admin`` tokens, or a token naming this tenant, see those).
DEFAULT_TENANT = "default"
_TENANT = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@attrs.frozen
class TokenGrant:
    """What one token may do (``scopes``) and whose jobs it acts on (``tenant``; ``None``:
    the token is its own tenant, see :func:`perfgate.auth.token_tenant`)."""

    scopes: tuple[str, ...] = ()
    tenant: str | None = None

    @classmethod
    def from_config(cls, value: Any, where: str) -> TokenGrant:
        """``["submit", ...]`` (scopes only) or ``{ scopes = [...], tenant = "acme" }``."""
        if isinstance(value, cls):
            return value
        if isinstance(value, list | tuple):
            value = {"scopes": value}
        if not isinstance(value, dict):
            raise ConfigError(
                f"{where}: expected a list of scopes or a table with scopes and tenant, "
                f"got {value!r}"
            )
        unknown = set(value) - {"scopes", "tenant"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {sorted(unknown)[0]!r} (known: scopes, tenant)"
            )
        scopes = value.get("scopes", [])
        if not isinstance(scopes, list | tuple) or not all(isinstance(s, str) for s in scopes):
            raise ConfigError(f"{where}.scopes: expected a list of strings, got {scopes!r}")
        tenant = value.get("tenant")
        if tenant is not None and (not isinstance(tenant, str) or not _TENANT.fullmatch(tenant)):
            raise ConfigError(
                f"{where}.tenant: expected 1-64 letters, digits, '_', '.' or '-', got {tenant!r}"
            )
        return cls(scopes=tuple(scopes), tenant=tenant)


def _grants(value: Mapping[str, Any]) -> dict[str, TokenGrant]:
    # Tests and embedders pass ``{"token": ("submit",)}``, as before tenants existed.
    return {str(k): TokenGrant.from_config(v, f"tokens.{k}") for k, v in value.items()}


def _tokens(_inst: Any, attr: attrs.Attribute[Any], value: Mapping[str, TokenGrant]) -> None:
    for token, grant in value.items():
        if len(token) < 8:
            raise ConfigError(f"{attr.name}: a token must be at least 8 characters")
        if not _TOKEN.fullmatch(token):
            # A header cannot carry the rest ("token\n" could never be presented).
            raise ConfigError(f"{attr.name}: a token is printable ASCII without spaces")
        unknown = set(grant.scopes) - SCOPES
        if unknown:
            raise ConfigError(
                f"{attr.name}: unknown scope {sorted(unknown)[0]!r} "
                f"(known: {', '.join(sorted(SCOPES))})"
            )


@attrs.frozen
class AuthConfig:
    tokens: Mapping[str, TokenGrant] = attrs.field(
        factory=dict, converter=_grants, validator=_tokens
    )
