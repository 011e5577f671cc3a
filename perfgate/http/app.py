"""The Quart-trio application: routes are thin; the work lives in the components they call."""

from __future__ import annotations

import json
import math
from typing import Any

import attrs
from quart import Blueprint, Quart, Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from perfgate import __version__
from perfgate.auth import Authenticator
from perfgate.config import Config
from perfgate.errors import PerfgateError
from perfgate.gateway import WS_PATH
from perfgate.gateway.jobs import SUBMITS_IN_FLIGHT
from perfgate.http.channels import blueprint as channels_blueprint
from perfgate.http.documents import documents_blueprint
from perfgate.http.edge import install_edge
from perfgate.http.events import EventStreams
from perfgate.http.events import blueprint as events_blueprint
from perfgate.http.jobs import blueprint as jobs_blueprint
from perfgate.http.openapi import build_openapi, document
from perfgate.http.problems import from_http_exception, from_perfgate_error, from_unexpected
from perfgate.http.security import authenticate
from perfgate.http.services import Services
from perfgate.monitor import Monitor, monitor_blueprint
from perfgate.readiness import RETRY_AFTER_S, Readiness
from perfgate.schema import STATUS

#: The scope each monitor route needs when tokens are configured (``admin`` has every scope).
MONITOR_SCOPES = {"/metrics": "metrics", "/v1/stats": "admin"}
STATUS_SCHEMA = STATUS
INFO_SCHEMA = {
    "type": "object",
    "properties": {
        "version": {"type": "string"},
        "ws": {"type": "string"},
        "ws_rate_limit_per_s": {"type": "number"},
        "ws_submits_in_flight": {"type": "integer"},
    },
    "required": ["version", "ws"],
}


@attrs.define
class AppState:
    """Everything the routes need, passed in explicitly (no module globals).

    ``services`` holds the components, typed (:mod:`perfgate.http.services`).
    """

    config: Config
    readiness: Readiness
    authenticator: Authenticator
    services: Services = attrs.field(factory=Services)


def create_app(state: AppState) -> Quart:
    app = QuartTrio("perfgate")
    app.config["PERFGATE"] = state
    app.config["MAX_CONTENT_LENGTH"] = state.config.http.max_body_bytes
    app.config["BODY_TIMEOUT"] = state.config.http.read_timeout_s
    # Long-polls (?wait=S) are capped at max_wait_s; leave room above it before Quart gives up.
    app.config["RESPONSE_TIMEOUT"] = state.config.http.max_wait_s + 30
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # One set of edge hooks: request id, limits, ETag, gzip, CORS, then the access line and
    # the monitor's timings with the final status.
    monitor = state.services.monitor
    edge = state.services.edge = install_edge(app, state.config.http, monitor)
    _install_error_handlers(app)

    @app.get("/healthz")
    @document("Liveness", responses={200: STATUS_SCHEMA}, tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process is up and its event loop answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    @document("Readiness", responses={200: STATUS_SCHEMA, 503: None}, tags=["health"])
    async def readyz() -> tuple[dict[str, str], int, dict[str, str]]:
        """Readiness: 200 only while accepting work; 503 with ``Retry-After`` while starting,
        draining or while a dependency is down."""
        readiness = state.readiness
        if readiness.ready:
            return {"status": "ready"}, 200, {}
        retry_after = str(math.ceil(RETRY_AFTER_S))
        return {"status": readiness.reason()}, 503, {"Retry-After": retry_after}

    @app.get("/v1/info")
    @document(
        "Server version and where its WebSocket gateway is",
        responses={200: INFO_SCHEMA},
        tags=["meta"],
    )
    async def info() -> dict[str, Any]:
        """What a client needs to find the gateway (``perfgate.client`` reads it)."""
        return {
            "version": __version__,
            "ws": dashboard_ws_url(state),
            "ws_rate_limit_per_s": state.config.gateway.rate_limit_per_s,
            # Submit frames are held to this many in flight, not to the frame rate.
            "ws_submits_in_flight": SUBMITS_IN_FLIGHT,
        }

    @app.get("/openapi.json")
    @document("This document", responses={200: {"type": "object"}}, tags=["meta"])
    async def openapi() -> Response:
        doc = build_openapi(
            app,
            auth_enabled=state.config.auth_enabled,
            body_enums={"task": sorted(state.config.tasks)},
            rate_limited=state.config.http.rate_limit_per_s > 0,
        )
        response = Response(json.dumps(doc), content_type="application/json")
        response.headers["Cache-Control"] = "public, max-age=60"
        return response

    app.register_blueprint(
        documents_blueprint(
            ws_url=lambda: dashboard_ws_url(state), auth_enabled=state.config.auth_enabled
        )
    )
    app.register_blueprint(jobs_blueprint)
    app.register_blueprint(channels_blueprint)
    streams = state.services.event_streams = EventStreams(state.config.http)
    app.register_blueprint(events_blueprint)
    if monitor is not None:
        monitor.add_source("http", edge.stats)
        monitor.add_source("event_streams", streams.stats)
        app.register_blueprint(_guarded_monitor_routes(monitor, state))
    return app


def _guarded_monitor_routes(monitor: Monitor, state: AppState) -> Blueprint:
    """``/metrics`` needs the ``metrics`` scope (a scraper's token can do nothing else) and
    ``/v1/stats`` the admin scope, when tokens are configured; the dashboard page itself holds
    no data (it reads the gateway with the user's token)."""
    blueprint = monitor_blueprint(
        monitor, ws_url=lambda: dashboard_ws_url(state), observe_requests=False
    )  # the edge observes requests, in its own hooks

    @blueprint.before_request
    async def _scoped() -> None:
        scope = MONITOR_SCOPES.get(request.path)
        if scope is not None:
            authenticate().require(scope)

    return blueprint


def dashboard_ws_url(state: AppState) -> str:
    """Where clients (the dashboard page, ``perfgate.client``) should connect: ``[gateway]
    public_url`` when set; else the gateway's own address, with the host the client used when
    the gateway listens on every interface. Behind a proxy that serves ``/ws`` on the page's
    origin, set ``public_url = "/ws"`` (the dashboard page also takes ``?ws=/ws``)."""
    if state.config.gateway.public_url:
        return state.config.gateway.public_url
    bound = state.services.ws_url
    if not bound:
        return WS_PATH
    host, _, port = bound.removeprefix("ws://").rpartition(":")
    if host in ("0.0.0.0", "[::]", "::"):
        host = request.host.rpartition(":")[0] if ":" in request.host else request.host
    return f"ws://{host}:{port}{WS_PATH}"


def _install_error_handlers(app: Quart) -> None:
    @app.errorhandler(PerfgateError)
    async def _perfgate_error(error: PerfgateError) -> Response:
        return from_perfgate_error(error)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        return from_http_exception(error)

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        return from_unexpected(error)
