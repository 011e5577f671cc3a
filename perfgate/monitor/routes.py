"""The monitor's HTTP face: ``/metrics``, ``/v1/stats``, the dashboard page and its assets.

``monitor_blueprint(monitor)`` is registered by the app. Unless ``observe_requests=False``,
it also installs app-wide request hooks that feed :meth:`Monitor.observe_http` (with the URL
rule template as the route, ``"unmatched"`` for a 404 that matched no rule) and the in-flight
gauge. Handlers are plain: the app applies auth.

The dashboard learns the WebSocket URL from ``<meta name="perfgate-ws">``, filled here from
``ws_url`` (a string, or a callable read at each page load since the gateway may bind after
the app is built); ``/ws`` (relative, for a reverse proxy) when none is given. The page's own
``?ws=`` parameter overrides it.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from importlib import resources

from quart import Blueprint, Response, g, request

from perfgate.http.openapi import document
from perfgate.http.static import asset_response, page_response
from perfgate.monitor.monitor import Monitor

UNMATCHED = "unmatched"
HTML = {"type": "string", "contentMediaType": "text/html"}
STATS = {"type": "object", "description": "per-route percentiles, rates, system, pool, alerts"}
_ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "jobs.js": "text/javascript; charset=utf-8",
    "jobs.css": "text/css; charset=utf-8",
}
_PLACEHOLDER = "{{PERFGATE_WS_URL}}"
# The page loads only its own files and talks only to the gateway.
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; base-uri 'none'; frame-ancestors 'none'"
)


def _read_asset(name: str) -> bytes:
    return (resources.files("perfgate.monitor") / "dashboard" / name).read_bytes()


def monitor_blueprint(
    monitor: Monitor,
    *,
    ws_url: str | Callable[[], str] | None = None,
    observe_requests: bool = True,
) -> Blueprint:
    """``GET /metrics``, ``GET /v1/stats``, ``GET /`` and ``GET /dashboard/<file>``."""
    bp = Blueprint("monitor", __name__)
    page = _read_asset("index.html").decode()
    assets = {name: _read_asset(name) for name in _ASSETS}

    @bp.get("/metrics")
    @document(
        "Prometheus metrics",
        responses={200: {"type": "string"}},
        scope="metrics",
        tags=["monitor"],
        content_type="text/plain",
    )
    async def metrics() -> Response:
        body, content_type = monitor.render_metrics()
        return Response(body, content_type=content_type)

    @bp.get("/v1/stats")
    @document(
        "A JSON snapshot of the monitor", responses={200: STATS}, scope="admin", tags=["monitor"]
    )
    async def stats() -> Response:
        response = Response(_dumps(monitor.snapshot()), content_type="application/json")
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/")
    @document(
        "The live dashboard", responses={200: HTML}, tags=["monitor"], content_type="text/html"
    )
    async def dashboard() -> Response:
        url = ws_url() if callable(ws_url) else ws_url
        body = page.replace(_PLACEHOLDER, html.escape(url or "/ws", quote=True))
        return page_response(body, csp=_PAGE_CSP)

    @bp.get("/dashboard/<name>")
    @document(
        "The dashboard's script and style sheet",
        responses={200: {"type": "string"}, 404: None},
        tags=["monitor"],
        content_type=("text/javascript", "text/css"),
        params={"name": {"type": "string", "enum": sorted(_ASSETS)}},
    )
    async def asset(name: str) -> Response:
        return asset_response(assets, _ASSETS, name, what="dashboard")

    if observe_requests:
        _install_request_hooks(bp, monitor)
    return bp


def _install_request_hooks(bp: Blueprint, monitor: Monitor) -> None:
    @bp.before_app_request
    async def _started() -> None:
        g.perfgate_monitor_started = time.perf_counter()
        monitor.http_started()

    @bp.after_app_request
    async def _finished(response: Response) -> Response:
        started = g.get("perfgate_monitor_started")
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED
            monitor.observe_http(
                rule, request.method, response.status_code, time.perf_counter() - started
            )
        return response

    @bp.teardown_app_request
    async def _teardown(_exc: BaseException | None) -> None:
        # Runs even when the request was cancelled or crashed, so the gauge cannot drift.
        if g.pop("perfgate_monitor_started", None) is not None:
            monitor.http_finished()


def _dumps(document: object) -> str:
    return json.dumps(document, separators=(",", ":"), allow_nan=False)
