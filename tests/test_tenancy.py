"""Tenants, end to end on a real service (SQLite and Redis journals): a token reaches its own
tenant's jobs only; another tenant's job is a 404 like an unknown one; ``admin`` sees all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.gateway.wsclient import Client

TOKENS: dict[str, Any] = {
    "acme-submitter": {"scopes": ["submit", "subscribe"], "tenant": "acme"},
    "acme-reader-01": {"scopes": ["subscribe"], "tenant": "acme"},
    # The form from before tenants: each of these tokens is its own tenant.
    "bravo-submitter": ["submit", "subscribe"],
    "bravo-reader-01": ["subscribe"],
    "the-admin-token": ["admin"],
}
LONG_JOB = {"task": "sleep", "args": {"seconds": 60}}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["sqlite", "redis"])
async def http(request: pytest.FixtureRequest, service_factory: Any) -> AsyncIterator[Any]:
    sections: dict[str, Any] = {"auth": {"tokens": TOKENS}}
    if request.param == "redis":
        sections["server"] = {"broker": request.getfixturevalue("redis_url")}
    service = await service_factory(**sections)
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as client:
        client.service = service  # type: ignore[attr-defined]
        yield client


async def submit(http: httpx.AsyncClient, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/v1/jobs", json=body, headers=auth(token))
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


async def listed(http: httpx.AsyncClient, token: str) -> list[str]:
    response = await http.get("/v1/jobs?limit=1000", headers=auth(token))
    assert response.status_code == 200
    return [job["id"] for job in response.json()["jobs"]]


async def test_another_tenants_job_is_not_found(http: httpx.AsyncClient) -> None:
    acme = await submit(http, "acme-submitter", LONG_JOB)
    bravo = await submit(http, "bravo-submitter", {"task": "echo", "args": {"secret": 7}})
    assert acme["tenant"] == "acme" and bravo["tenant"].startswith("tok-")
    assert "bravo-submitter" not in bravo["tenant"]  # a tenant id is not the token
    job_url = f"/v1/jobs/{acme['id']}"
    unknown = await http.get("/v1/jobs/no-such-job", headers=auth("bravo-submitter"))
    for token in ("bravo-submitter", "bravo-reader-01"):
        for method, url in (
            ("GET", job_url),
            ("GET", f"{job_url}?wait=1"),
            ("GET", f"{job_url}/logs"),
            ("DELETE", job_url),
        ):
            if method == "DELETE" and token == "bravo-reader-01":
                continue  # no submit scope: 403 for any id, before any job is looked up
            response = await http.request(method, url, headers=auth(token))
            assert response.status_code == 404, (token, method, url)
            # Word for word what an unknown id answers: a job id leaks nothing.
            assert response.json()["title"] == unknown.json()["title"]
            assert acme["id"] in response.json()["detail"]
            assert "secret" not in response.text
    # The job was not cancelled by the refused DELETE.
    own = await http.get(job_url, headers=auth("acme-reader-01"))
    assert own.status_code == 200 and own.json()["state"] in ("queued", "running")
    # Listings: a token sees its tenant's jobs; a subscribe-only token of another tenant
    # (even one configured like bravo's) sees none of them.
    assert await listed(http, "acme-submitter") == [acme["id"]]
    assert await listed(http, "acme-reader-01") == [acme["id"]]
    assert await listed(http, "bravo-submitter") == [bravo["id"]]
    assert await listed(http, "bravo-reader-01") == []
    assert await listed(http, "the-admin-token") == [bravo["id"], acme["id"]]
    logs = await http.get(f"{job_url}/logs", headers=auth("acme-reader-01"))
    assert logs.status_code == 200
    # admin reaches every job; the owner cancels its own.
    seen = await http.get(f"/v1/jobs/{bravo['id']}?wait=20", headers=auth("the-admin-token"))
    assert seen.json()["result"] == {"secret": 7}
    cancelled = await http.delete(job_url, headers=auth("acme-submitter"))
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    other = await submit(http, "bravo-submitter", LONG_JOB)
    by_admin = await http.delete(f"/v1/jobs/{other['id']}", headers=auth("the-admin-token"))
    assert by_admin.json()["state"] == "cancelled"


async def test_listing_pages_hold_only_the_tenants_jobs_and_are_full(
    http: httpx.AsyncClient,
) -> None:
    mine = []
    for i in range(9):
        token = "acme-submitter" if i % 3 == 0 else "bravo-submitter"
        job = await submit(http, token, {"task": "echo", "args": {"i": i}})
        if token == "acme-submitter":
            mine.insert(0, job["id"])
    pages = []
    cursor = None
    while True:
        query = "/v1/jobs?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = (await http.get(query, headers=auth("acme-reader-01"))).json()
        pages.append([job["id"] for job in body["jobs"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [mine[:2], mine[2:]]


async def test_idempotency_keys_are_per_tenant(http: httpx.AsyncClient) -> None:
    body = {"task": "echo", "args": {"x": 1}, "idempotency_key": "nightly"}
    acme = await submit(http, "acme-submitter", body)
    # The same key in another tenant, with another body: its own job, not a 409 or acme's.
    bravo = await submit(http, "bravo-submitter", {**body, "args": {"x": 2}})
    assert bravo["id"] != acme["id"]
    for token, job in (("acme-submitter", acme), ("bravo-submitter", bravo)):
        again = await http.post("/v1/jobs", json={**body, "args": job["args"]}, headers=auth(token))
        assert again.status_code == 200 and again.json()["id"] == job["id"]
    conflict = await http.post(
        "/v1/jobs", json={**body, "args": {"x": 2}}, headers=auth("acme-submitter")
    )
    assert conflict.status_code == 409
    assert bravo["id"] not in conflict.text


async def test_a_job_channel_is_its_tenants(http: httpx.AsyncClient) -> None:
    ws_url = http.service.ws  # type: ignore[attr-defined]
    job = await submit(http, "acme-submitter", {"task": "echo", "args": {"secret": 7}})
    await http.get(f"/v1/jobs/{job['id']}?wait=20", headers=auth("acme-submitter"))
    channel = f"jobs:{job['id']}"
    clients = {}
    for token in ("bravo-submitter", "bravo-reader-01", "acme-reader-01", "the-admin-token"):
        clients[token] = await Client.connect(ws_url, token=token)
        assert (await clients[token].recv())["type"] == "welcome"
    try:
        for token in ("bravo-submitter", "bravo-reader-01"):
            for frame in (
                {"op": "subscribe", "id": 1, "channel": channel},
                {"op": "subscribe", "id": 2, "channel": channel, "since": 0},
            ):
                reply = await clients[token].request(frame)
                assert reply["type"] == "error" and reply["code"] == "not_found", reply
            assert clients[token].stash == []  # nothing of the job was replayed
        for token in ("acme-reader-01", "the-admin-token"):
            frame = {"op": "subscribe", "id": 3, "channel": channel, "since": 0}
            assert (await clients[token].request(frame))["type"] == "ack"
            events = [m["data"] for m in await clients[token].messages(4)]
            assert {"event": "result", "result": {"secret": 7}}.items() <= events[-2].items()
        # Nobody publishes into a job's channel but the server, admin included.
        for token in ("acme-reader-01", "the-admin-token"):
            frame = {"op": "publish", "id": 4, "channel": channel, "data": 1}
            assert (await clients[token].request(frame))["type"] == "error"
        spoof = await http.post(
            f"/v1/channels/{channel}/messages",
            json={"data": {"event": "state", "state": "failed"}},
            headers=auth("the-admin-token"),
        )
        assert spoof.status_code == 403
    finally:
        for client in clients.values():
            await client.close()


async def test_jobs_submitted_in_a_batch_or_over_the_websocket_are_the_submitters(
    http: httpx.AsyncClient,
) -> None:
    """Every way in gives the job to the submitting token's tenant: one request per job, a
    batch, and the WebSocket ``submit`` op (and the idempotency keys of each are per tenant)."""
    keyed = {"task": "echo", "args": {"x": 1}, "idempotency_key": "shared-key"}
    batch = await http.post(
        "/v1/jobs:batch", json={"jobs": [keyed, LONG_JOB]}, headers=auth("acme-submitter")
    )
    assert batch.status_code == 200
    acme_ids = [answer["job"]["id"] for answer in batch.json()["jobs"]]
    assert all(answer["job"]["tenant"] == "acme" for answer in batch.json()["jobs"])
    waited = await http.post(
        "/v1/jobs?wait=20", json={"task": "echo"}, headers=auth("acme-submitter")
    )
    assert waited.status_code == 200 and waited.json()["tenant"] == "acme"
    acme_ids.append(waited.json()["id"])
    client = await Client.connect(http.service.ws, token="bravo-submitter")  # type: ignore[attr-defined]
    try:
        assert (await client.recv())["type"] == "welcome"
        # The same key in bravo's tenant is bravo's own new job, not acme's.
        frame = {"op": "submit", "id": 1, **keyed, "args": {"x": 2}}
        ack = await client.request(frame)
        assert ack["type"] == "ack" and ack["created"] is True, ack
        bravo_job = ack["job"]
        assert bravo_job["tenant"].startswith("tok-") and bravo_job["id"] not in acme_ids
    finally:
        await client.close()
    for job_id in acme_ids:
        response = await http.get(f"/v1/jobs/{job_id}", headers=auth("bravo-submitter"))
        assert response.status_code == 404
    response = await http.get(f"/v1/jobs/{bravo_job['id']}", headers=auth("acme-submitter"))
    assert response.status_code == 404
    assert bravo_job["id"] in await listed(http, "bravo-submitter")
    assert set(acme_ids) == set(await listed(http, "acme-submitter"))


async def test_with_no_tokens_there_is_one_tenant(service: Any) -> None:
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as client:
        first = (
            await client.post("/v1/jobs", json={"task": "echo", "idempotency_key": "k"})
        ).json()
        again = await client.post("/v1/jobs", json={"task": "echo", "idempotency_key": "k"})
        assert again.status_code == 200 and again.json()["id"] == first["id"]
        assert first["tenant"] == "default"
        jobs = (await client.get("/v1/jobs")).json()["jobs"]
        assert [job["id"] for job in jobs] == [first["id"]]
    ws = await Client.connect(service.ws)
    await ws.recv()
    ack = await ws.request({"op": "subscribe", "channel": f"jobs:{first['id']}", "id": 1})
    assert ack["type"] == "ack"
    await ws.close()
