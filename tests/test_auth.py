"""Tokens and scopes, end to end: HTTP (Bearer) and the WebSocket handshake."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from websockets.exceptions import InvalidStatus

from tests.gateway.wsclient import Client

TOKENS = {
    "submit-token-1": ("submit", "subscribe"),
    "reader-token-1": ("subscribe",),
    "admin-token-12": ("admin",),
}


@pytest.fixture
async def secured(service_factory: Any) -> Any:
    return await service_factory(auth={"tokens": TOKENS})


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (None, 401),
        ("wrong-token-1", 401),
        ("reader-token-1", 403),
        ("submit-token-1", 202),
        ("admin-token-12", 202),
    ],
)
async def test_submit_needs_the_submit_scope(secured: Any, token: str | None, status: int) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=secured.http) as http:
        response = await http.post("/v1/jobs", json={"task": "echo"}, headers=headers)
    assert response.status_code == status
    if status >= 400:
        assert response.headers["Content-Type"] == "application/problem+json"


async def test_health_is_open_and_metrics_need_admin(secured: Any) -> None:
    async with httpx.AsyncClient(base_url=secured.http) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/metrics")).status_code == 401
        reader = {"Authorization": "Bearer reader-token-1"}
        assert (await http.get("/v1/stats", headers=reader)).status_code == 403
        admin = {"Authorization": "Bearer admin-token-12"}
        assert (await http.get("/metrics", headers=admin)).status_code == 200


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong-token-1", 401)])
async def test_websocket_handshake_rejected_without_a_valid_token(
    secured: Any, token: str | None, status: int
) -> None:
    with pytest.raises(InvalidStatus) as info:
        await Client.connect(secured.ws, token=token)
    assert info.value.response.status_code == status


async def test_websocket_token_in_query_or_header(secured: Any) -> None:
    by_header = await Client.connect(secured.ws, token="reader-token-1")
    assert (await by_header.recv())["type"] == "welcome"
    by_query = await Client.connect(secured.ws, path="/ws?token=reader-token-1")
    assert (await by_query.recv())["type"] == "welcome"
    # Subscribing is allowed, publishing is not.
    reply = await by_query.request({"op": "publish", "channel": "news", "data": 1, "id": 3})
    assert reply["type"] == "error" and reply["id"] == 3
    await trio.to_thread.run_sync(by_header.ws.close)
    await trio.to_thread.run_sync(by_query.ws.close)


def test_a_token_is_its_own_tenant_unless_it_names_one() -> None:
    from perfgate.auth import Authenticator, token_tenant
    from perfgate.config import TokenGrant

    auth = Authenticator(
        {
            "plain-token-1": ("submit",),
            "plain-token-2": ("submit",),
            "named-token-1": TokenGrant(("subscribe",), tenant="acme"),
            "named-admin-1": TokenGrant(("admin",), tenant="acme"),
        }
    )
    one, two = auth.authenticate("plain-token-1"), auth.authenticate("plain-token-2")
    assert one.tenant == token_tenant("plain-token-1")  # stable: the same after a restart
    assert one.tenant != two.tenant and "plain-token" not in one.tenant
    assert one.tenant_filter == one.tenant
    named = auth.authenticate("named-token-1")
    assert named.tenant == named.tenant_filter == "acme"
    admin = auth.authenticate("named-admin-1")
    assert admin.tenant == "acme" and admin.tenant_filter is None  # submits as acme, sees all


async def test_a_scrapers_metrics_token_reads_metrics_and_nothing_else(
    service_factory: Any,
) -> None:
    service = await service_factory(auth={"tokens": {**TOKENS, "scraper-token-1": ("metrics",)}})
    scraper = {"Authorization": "Bearer scraper-token-1"}
    reader = {"Authorization": "Bearer reader-token-1"}
    async with httpx.AsyncClient(base_url=service.http) as http:
        assert (await http.get("/metrics", headers=scraper)).status_code == 200
        assert (await http.get("/metrics", headers=reader)).status_code == 403
        assert (await http.get("/v1/stats", headers=scraper)).status_code == 403
        submit = await http.post("/v1/jobs", json={"task": "echo"}, headers=scraper)
        assert submit.status_code == 403
        publish = await http.post("/v1/channels/news/messages", json={"data": 1}, headers=scraper)
        assert publish.status_code == 403
    with pytest.raises(InvalidStatus) as info:  # not even a subscriber
        await Client.connect(service.ws, token="scraper-token-1")
    assert info.value.response.status_code == 403
