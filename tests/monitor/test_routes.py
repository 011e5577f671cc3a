"""The monitor blueprint in the real app: /metrics, /v1/stats, the dashboard page and assets."""

from __future__ import annotations

from typing import Any

from quart import Quart

from perfgate.auth import Authenticator
from perfgate.config import load_config
from perfgate.http.app import AppState, create_app
from perfgate.monitor import Monitor, monitor_blueprint
from perfgate.readiness import Readiness


def make_app(ws_url: str | None = None, **blueprint: Any) -> tuple[Quart, Monitor]:
    """The app as the supervisor builds it; with ``blueprint`` options, the monitor routes are
    registered by hand instead (to test options the service does not use)."""
    config = load_config(None, env={})
    monitor = Monitor(config.monitor)
    state = AppState(
        config=config, readiness=Readiness(), authenticator=Authenticator(config.auth.tokens)
    )
    if ws_url is not None:
        state.services.ws_url = ws_url
    if blueprint:
        app = create_app(state)
        app.register_blueprint(monitor_blueprint(monitor, **blueprint))
    else:
        state.services.monitor = monitor
        app = create_app(state)
    return app, monitor


async def test_requests_are_observed_by_route_template() -> None:
    app, _ = make_app()
    client = app.test_client()
    for _ in range(3):
        assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/no/such/path/123")).status_code == 404
    stats = await (await client.get("/v1/stats")).get_json()
    routes = stats["http"]["routes"]
    assert routes["GET /healthz"]["count"] == 3
    assert routes["GET unmatched"]["count"] == 1
    assert not any("123" in key for key in routes)
    body = (await (await client.get("/metrics")).get_data()).decode()
    assert 'route="/healthz",status_class="2xx"' in body
    assert 'route="unmatched",status_class="4xx"' in body
    assert "perfgate_http_requests_in_flight 1.0" in body  # this very scrape


async def test_metrics_content_type_and_stats_shape() -> None:
    app, _ = make_app()
    client = app.test_client()
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    response = await client.get("/v1/stats")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    stats = await response.get_json()
    assert {"http", "jobs", "ws_delivery", "system", "pool", "gateway", "cache"} <= stats.keys()
    assert {"alerts", "recommendations", "regressions", "window_s"} <= stats.keys()


async def test_dashboard_page_carries_the_gateway_url_escaped() -> None:
    # The gateway's bound address as the supervisor records it; the page gets ".../ws".
    app, _ = make_app(ws_url='ws://"><script>:8081')
    response = await app.test_client().get("/")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    page = (await response.get_data()).decode()
    assert '<meta name="perfgate-ws" content="ws://&quot;&gt;&lt;script&gt;:8081/ws">' in page
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script>" not in page.replace('<script src="dashboard/dashboard.js">', "")


async def test_dashboard_defaults_to_a_relative_ws_for_a_proxy() -> None:
    app, _ = make_app()
    page = (await (await app.test_client().get("/")).get_data()).decode()
    assert '<meta name="perfgate-ws" content="/ws">' in page


async def test_assets_are_served_and_nothing_else() -> None:
    app, _ = make_app()
    client = app.test_client()
    js = await client.get("/dashboard/dashboard.js")
    assert js.status_code == 200 and js.content_type.startswith("text/javascript")
    assert "$sys:stats" in (await js.get_data()).decode()
    css = await client.get("/dashboard/dashboard.css")
    assert css.status_code == 200 and css.content_type.startswith("text/css")
    for path in ("/dashboard/index.html", "/dashboard/..%2Fmonitor.py", "/dashboard/x.js"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.content_type == "application/problem+json"


async def test_request_hooks_can_be_left_out() -> None:
    app, monitor = make_app(observe_requests=False)
    await app.test_client().get("/healthz")
    assert monitor.snapshot()["http"]["routes"] == {}


async def test_the_in_flight_gauge_returns_to_zero_after_errors_and_304s() -> None:
    """The edge's hooks keep the gauge exact: up once per request, down once in teardown,
    whatever the answer (an error, a 304, a 404)."""
    app, monitor = make_app()
    client = app.test_client()
    etag = (await client.get("/openapi.json")).headers["ETag"]
    assert (await client.get("/openapi.json", headers={"If-None-Match": etag})).status_code == 304
    assert (await client.get("/no/such/path")).status_code == 404
    assert (await client.post("/healthz")).status_code == 405
    assert monitor.metrics.registry.get_sample_value("perfgate_http_requests_in_flight") == 0
