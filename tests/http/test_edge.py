"""The HTTP edge through the real app: CORS, ETag/304, gzip, rate limits, body limits."""

from __future__ import annotations

import gzip
from typing import Any

from quart import Quart

from perfgate.auth import Authenticator
from perfgate.config import load_config
from perfgate.http.app import AppState, create_app
from perfgate.readiness import Phase, Readiness

ORIGIN = "https://app.example"


def make_app(**http: Any) -> Quart:
    config = load_config(None, env={}, overrides={"http": {"cors_origins": (ORIGIN,), **http}})
    state = AppState(config=config, readiness=Readiness(), authenticator=Authenticator({}))
    state.readiness.advance(Phase.READY)
    app = create_app(state)

    @app.post("/test/echo")
    async def echo() -> dict[str, Any]:
        from quart import request

        return {"size": len(await request.get_data())}

    return app


async def test_preflight_for_allowed_origin() -> None:
    response = (
        await make_app()
        .test_client()
        .options(
            "/openapi.json",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, authorization",
            },
        )
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "content-type, authorization"


async def test_disallowed_origin_gets_no_cors_headers() -> None:
    client = make_app().test_client()
    preflight = await client.options(
        "/healthz",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    plain = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in plain.headers
    assert "Origin" in plain.headers["Vary"]


async def test_cors_headers_on_errors_and_304() -> None:
    client = make_app().test_client()
    error = await client.get("/no/such/route", headers={"Origin": ORIGIN})
    assert error.status_code == 404
    assert error.headers["Access-Control-Allow-Origin"] == ORIGIN
    first = await client.get("/healthz", headers={"Origin": ORIGIN})
    etag = first.headers["ETag"]
    again = await client.get("/healthz", headers={"Origin": ORIGIN, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert again.headers["ETag"] == etag
    assert await again.get_data() == b""


async def test_etag_is_content_based() -> None:
    client = make_app().test_client()
    a = await client.get("/openapi.json")
    b = await client.get("/openapi.json")
    assert a.headers["ETag"] == b.headers["ETag"]
    assert a.headers["ETag"] != (await client.get("/healthz")).headers["ETag"]
    stale = await client.get("/openapi.json", headers={"If-None-Match": '"nope"'})
    assert stale.status_code == 200


async def test_gzip_above_1_kib_when_asked() -> None:
    client = make_app().test_client()
    plain = await client.get("/openapi.json")
    body = await plain.get_data()
    assert len(body) > 1024 and "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers["Vary"]
    zipped = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await zipped.get_data()) == body
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    # A conditional request with the coded tag still matches.
    again = await client.get(
        "/openapi.json",
        headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]},
    )
    assert again.status_code == 304
    small = await client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers


async def test_rate_limit_is_429_with_retry_after(autojump_clock: Any) -> None:
    client = make_app(rate_limit_per_s=1.0, rate_burst=3).test_client()
    statuses = [(await client.get("/openapi.json")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await client.get("/openapi.json")
    assert limited.headers["Retry-After"] == "1"
    assert (await limited.get_json())["code"] == "rate_limited"
    # Probes are never limited.
    assert (await client.get("/healthz")).status_code == 200


async def test_body_over_limit_is_413() -> None:
    client = make_app(max_body_bytes=100).test_client()
    ok = await client.post("/test/echo", data=b"x" * 100)
    assert ok.status_code == 200
    big = await client.post("/test/echo", data=b"x" * 101)
    assert big.status_code == 413
    assert big.content_type == "application/problem+json"


async def test_openapi_document_lists_routes() -> None:
    doc = await (await make_app().test_client().get("/openapi.json")).get_json()
    assert doc["openapi"] == "3.1.0"
    assert "/healthz" in doc["paths"] and "get" in doc["paths"]["/readyz"]


async def test_request_headers_are_matched_whatever_their_case() -> None:
    """The edge reads the request's headers once, by lower-cased name: a client that sends
    ``if-none-match`` or ``ORIGIN`` gets what one sending the canonical case gets."""
    client = make_app().test_client()
    first = await client.get("/openapi.json", headers={"origin": ORIGIN})
    assert first.headers["Access-Control-Allow-Origin"] == ORIGIN
    etag = first.headers["ETag"]
    again = await client.get(
        "/openapi.json", headers={"IF-NONE-MATCH": etag, "ORIGIN": ORIGIN, "x-request-id": "r-1"}
    )
    assert again.status_code == 304
    assert again.headers["ETag"] == etag and again.headers["X-Request-ID"] == "r-1"
    assert again.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in again.headers["Vary"]
    zipped = await client.get("/openapi.json", headers={"accept-encoding": "GZIP"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["ETag"].endswith('-gz"')
