"""Pages and assets served from package files (the dashboard, the API browser): one way to
answer them. Each page loads only from its own origin, which its Content-Security-Policy
enforces, and a fixed list of asset names means no request path ever reaches the filesystem."""

from __future__ import annotations

from collections.abc import Mapping

from quart import Response

from perfgate.errors import NotFound

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def page_response(body: str | bytes, *, csp: str = PAGE_CSP) -> Response:
    """An HTML page, revalidated on every load (the package may be upgraded under it)."""
    response = Response(body, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = csp
    response.headers["Cache-Control"] = "no-cache"
    return response


def asset_response(
    assets: Mapping[str, bytes], types: Mapping[str, str], name: str, *, what: str
) -> Response:
    """One of a page's assets by name; :class:`NotFound` (404) for any other name."""
    if name not in assets:
        raise NotFound(f"no {what} asset {name!r}")
    response = Response(assets[name], content_type=types[name])
    response.headers["Cache-Control"] = "no-cache"
    return response
