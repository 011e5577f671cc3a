"""``GET /docs`` (an API browser), its assets, and ``GET /asyncapi.json``.

The browser is three small package files (perfgate/http/docs/): a page that fetches
``/openapi.json`` and ``/asyncapi.json`` and renders them. Nothing is loaded from another
origin (no CDN), which the page's Content-Security-Policy enforces.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from urllib.parse import urlsplit

from quart import Blueprint, Response, request

from perfgate.gateway.asyncapi import build_asyncapi
from perfgate.http.openapi import document
from perfgate.http.static import asset_response, page_response

ASSETS = {
    "docs.js": "text/javascript; charset=utf-8",
    "docs.css": "text/css; charset=utf-8",
}
HTML = {"type": "string", "contentMediaType": "text/html"}
ANY_JSON = {"type": "object"}


def _read(name: str) -> bytes:
    return (resources.files("perfgate.http") / "docs" / name).read_bytes()


def documents_blueprint(*, ws_url: Callable[[], str], auth_enabled: bool) -> Blueprint:
    """``ws_url()`` gives the gateway's URL as the dashboard would use it (absolute, or a
    path on this origin behind a proxy)."""
    bp = Blueprint("documents", __name__)
    page = _read("index.html")
    assets = {name: _read(name) for name in ASSETS}

    @bp.get("/docs")
    @document("This API, browsable", responses={200: HTML}, tags=["meta"], content_type="text/html")
    async def docs() -> Response:
        return page_response(page)

    @bp.get("/docs/<name>")
    @document(
        "The API browser's script and style sheet",
        responses={200: {"type": "string"}, 404: None},
        tags=["meta"],
        content_type=("text/javascript", "text/css"),
        params={"name": {"type": "string", "enum": sorted(ASSETS)}},
    )
    async def docs_asset(name: str) -> Response:
        return asset_response(assets, ASSETS, name, what="docs")

    @bp.get("/asyncapi.json")
    @document("The WebSocket protocol (AsyncAPI 3.0)", responses={200: ANY_JSON}, tags=["meta"])
    async def asyncapi() -> Response:
        url = urlsplit(ws_url())
        host = url.netloc or request.host
        doc = build_asyncapi(host=host, auth_enabled=auth_enabled)
        response = Response(json.dumps(doc), content_type="application/json")
        response.headers["Cache-Control"] = "no-cache"
        return response

    return bp
