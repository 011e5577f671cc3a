"""The ``Idempotency-Key`` header: the body field's twin, with the same 200/409 rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.fixture
async def http(service: Any) -> Any:
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as client:
        yield client


async def test_the_header_replays_and_conflicts_like_the_field(http: httpx.AsyncClient) -> None:
    body = {"task": "echo", "args": {"n": 1}}
    key = {"Idempotency-Key": "order-7"}
    first = await http.post("/v1/jobs", json=body, headers=key)
    again = await http.post("/v1/jobs", json=body, headers=key)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["idempotency_key"] == "order-7"
    # The header and the field are one key: either replays the other's job.
    field = await http.post("/v1/jobs", json={**body, "idempotency_key": "order-7"})
    assert field.status_code == 200 and field.json()["id"] == first.json()["id"]
    both = await http.post("/v1/jobs", json={**body, "idempotency_key": "order-7"}, headers=key)
    assert both.status_code == 200 and both.json()["id"] == first.json()["id"]
    other = await http.post("/v1/jobs", json={**body, "args": {"n": 2}}, headers=key)
    assert other.status_code == 409 and other.json()["code"] == "conflict"
    # ?wait follows the same rules.
    waited = await http.post("/v1/jobs?wait=5", json=body, headers=key)
    assert waited.status_code == 200 and waited.json()["id"] == first.json()["id"]


async def test_header_and_field_that_differ_are_422_naming_both(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1/jobs",
        json={"task": "echo", "idempotency_key": "a"},
        headers={"Idempotency-Key": "b"},
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"Idempotency-Key", "idempotency_key"}
    assert (await http.get("/v1/jobs")).json()["jobs"] == []  # nothing was submitted


@pytest.mark.parametrize("value", ["", "x" * 201])
async def test_a_bad_header_is_422_naming_the_key(http: httpx.AsyncClient, value: str) -> None:
    response = await http.post(
        "/v1/jobs", json={"task": "echo"}, headers={"Idempotency-Key": value}
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["idempotency_key"]


async def test_the_batch_route_refuses_the_header(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1/jobs:batch", json={"jobs": [{"task": "echo"}]}, headers={"Idempotency-Key": "k"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert (await http.get("/v1/jobs")).json()["jobs"] == []
