"""The HTTP app: health, readiness, problem documents, request ids, auth scopes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from quart import Quart

from perfgate.auth import Authenticator
from perfgate.config import load_config
from perfgate.http.app import AppState, create_app
from perfgate.http.security import requires
from perfgate.readiness import Phase, Readiness

TOKENS = {
    "submit-token-1": ("submit",),
    "admin-token-1": ("admin",),
    "reader-token": ("subscribe",),
}


def make_app(tokens: dict[str, tuple[str, ...]] | None = None) -> tuple[Quart, AppState]:
    config = load_config(None, env={}, overrides={"auth": {"tokens": tokens or {}}})
    state = AppState(
        config=config, readiness=Readiness(), authenticator=Authenticator(config.auth.tokens)
    )
    app = create_app(state)

    @app.post("/test/submit")
    @requires("submit")
    async def submit() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/test/boom")
    async def boom() -> dict[str, Any]:
        raise RuntimeError("secret internal detail")

    return app, state


async def test_healthz_and_readyz_follow_the_lifecycle() -> None:
    app, state = make_app()
    client = app.test_client()
    assert (await client.get("/healthz")).status_code == 200
    response = await client.get("/readyz")
    assert response.status_code == 503 and (await response.get_json())["status"] == "starting"
    state.readiness.advance(Phase.READY)
    assert (await client.get("/readyz")).status_code == 200
    assert "Retry-After" not in (await client.get("/readyz")).headers
    state.readiness.dependencies_down.add("broker")
    response = await client.get("/readyz")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert (await response.get_json())["status"] == "dependency down: broker"
    state.readiness.dependencies_down.clear()
    state.readiness.advance(Phase.DRAINING)
    response = await client.get("/readyz")
    assert response.status_code == 503 and (await response.get_json())["status"] == "draining"
    assert response.headers["Retry-After"] == "1"
    state.readiness.advance(Phase.READY)  # never goes back
    assert (await client.get("/readyz")).status_code == 503


async def test_unknown_route_is_a_problem_document() -> None:
    app, _ = make_app()
    response = await app.test_client().get("/nope")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    body = await response.get_json()
    assert body["status"] == 404 and body["code"] == "not_found" and body["instance"] == "/nope"


async def test_wrong_method_is_405_with_allow() -> None:
    app, _ = make_app()
    response = await app.test_client().post("/healthz")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert response.content_type == "application/problem+json"


async def test_unexpected_error_is_a_bare_500_without_details() -> None:
    app, _ = make_app()
    response = await app.test_client().get("/test/boom")
    assert response.status_code == 500
    text = (await response.get_data()).decode()
    assert "secret internal detail" not in text and "Traceback" not in text


async def test_request_id_is_kept_or_made() -> None:
    app, _ = make_app()
    client = app.test_client()
    kept = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["X-Request-ID"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["X-Request-ID"] != "bad id with spaces"
    assert len(made.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-token-x"}, 401),
        ({"Authorization": "Basic c3VibWl0"}, 401),
        ({"Authorization": "Bearer reader-token"}, 403),
        ({"Authorization": "Bearer submit-token-1"}, 200),
        ({"Authorization": "bearer admin-token-1"}, 200),
    ],
)
async def test_auth_scopes(headers: dict[str, str], status: int) -> None:
    app, _ = make_app(TOKENS)
    response = await app.test_client().post("/test/submit", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.content_type == "application/problem+json"


async def test_health_is_open_even_with_tokens() -> None:
    app, _ = make_app(TOKENS)
    assert (await app.test_client().get("/healthz")).status_code == 200


async def test_in_process_service_answers_over_real_sockets(service: Any) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(service.http + "/healthz")
        assert response.json() == {"status": "ok"}
        assert (await client.get(service.http + "/readyz")).status_code == 200


async def test_dashboard_ws_url_uses_the_browsers_host_for_a_wildcard_bind() -> None:
    from perfgate.http.app import dashboard_ws_url

    app, state = make_app()
    assert await _in_request(app, "example.com:8080", lambda: dashboard_ws_url(state)) == "/ws"
    state.services.ws_url = "ws://0.0.0.0:9000"
    got = await _in_request(app, "example.com:8080", lambda: dashboard_ws_url(state))
    assert got == "ws://example.com:9000/ws"
    state.services.ws_url = "ws://127.0.0.1:9000"
    got = await _in_request(app, "example.com", lambda: dashboard_ws_url(state))
    assert got == "ws://127.0.0.1:9000/ws"


async def _in_request(app: Quart, host: str, fn: Any) -> Any:
    async with app.test_request_context("/", headers={"Host": host}):
        return fn()


async def test_made_request_ids_are_distinct_and_well_formed() -> None:
    app, _ = make_app()
    client = app.test_client()
    made = {(await client.get("/healthz")).headers["X-Request-ID"] for _ in range(50)}
    assert len(made) == 50
    assert all(len(rid) == 32 and int(rid, 16) >= 0 for rid in made)
