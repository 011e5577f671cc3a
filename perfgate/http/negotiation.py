"""Pure HTTP header logic: CORS, entity tags, and content coding. No framework, no I/O."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence

CORS_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_ALLOWED_HEADERS = ("authorization", "content-type", "if-none-match", "x-request-id")
CORS_EXPOSED_HEADERS = "ETag, Location, Retry-After, X-Request-ID"
CORS_MAX_AGE_S = 600

COMPRESS_MIN_BYTES = 1024
_COMPRESSIBLE = (
    "application/json",
    "application/problem+json",
    "text/",
    "application/javascript",
    "image/svg+xml",
    "application/openapi+json",
)


def cors_origin(origin: str | None, allowed: Sequence[str]) -> str | None:
    """The value for ``Access-Control-Allow-Origin``, or None when the origin is not allowed."""
    if not origin or not allowed:
        return None
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


def preflight_headers(allowed_origin: str, requested_headers: str | None) -> dict[str, str]:
    asked = [h.strip().lower() for h in (requested_headers or "").split(",") if h.strip()]
    granted = [h for h in asked if h in CORS_ALLOWED_HEADERS] or list(CORS_ALLOWED_HEADERS)
    return {
        "Access-Control-Allow-Origin": allowed_origin,
        "Access-Control-Allow-Methods": CORS_METHODS,
        "Access-Control-Allow-Headers": ", ".join(granted),
        "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
    }


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): ``W/`` and our ``-gz`` coding suffix are ignored."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = _opaque(etag)
    return any(_opaque(tag) == wanted for tag in if_none_match.split(","))


def _opaque(tag: str) -> str:
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    return tag.removesuffix("-gz")


def coded_etag(etag: str) -> str:
    """A strong ETag must differ between a representation and its gzip coding."""
    return etag[:-1] + '-gz"' if etag.endswith('"') else etag


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when ``Accept-Encoding`` allows gzip (explicitly, or by ``*``) with q > 0."""
    if not accept_encoding:
        return False
    star: bool | None = None
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding in ("gzip", "x-gzip"):
            return q > 0
        if coding == "*":
            star = q > 0
    return bool(star)


def is_compressible(content_type: str | None) -> bool:
    return bool(content_type) and content_type.startswith(_COMPRESSIBLE)  # type: ignore[union-attr]


def gzip_body(body: bytes) -> bytes:
    # Level 5: most of level 9's ratio on JSON at a fraction of the CPU.
    return gzip.compress(body, compresslevel=5, mtime=0)


def add_vary(existing: str | None, *names: str) -> str:
    have = [v.strip() for v in (existing or "").split(",") if v.strip()]
    lowered = {v.lower() for v in have}
    have.extend(n for n in names if n.lower() not in lowered)
    return ", ".join(have)
