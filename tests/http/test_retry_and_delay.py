"""POST /v1/jobs/{id}/retry, and delayed submits, over real HTTP against the whole service."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from perfgate.config import TaskConfig, TokenGrant

FAILS = TaskConfig(name="fails", command=("false",))
TOKENS: dict[str, Any] = {
    "acme-submit-1": TokenGrant(("submit", "subscribe"), tenant="acme"),
    "acme-reader-1": TokenGrant(("subscribe",), tenant="acme"),
    "other-submit-1": TokenGrant(("submit", "subscribe"), tenant="other"),
}
ACME = {"Authorization": "Bearer acme-submit-1"}
READER = {"Authorization": "Bearer acme-reader-1"}
OTHER = {"Authorization": "Bearer other-submit-1"}


@pytest.fixture
async def http(service_factory: Any) -> Any:
    service = await service_factory(tasks={"fails": FAILS}, auth={"tokens": TOKENS})
    async with httpx.AsyncClient(base_url=service.http, timeout=30, headers=ACME) as client:
        yield client


async def finished(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}?wait=20")).json()
    return job


async def test_a_failed_job_runs_again_and_its_attempts_carry_on(http: httpx.AsyncClient) -> None:
    job = (await http.post("/v1/jobs?wait=20", json={"task": "fails"})).json()
    assert job["state"] == "failed" and job["attempts"] == 1 and job["error"] is not None
    retried = await http.post(f"/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 200
    body = retried.json()
    assert body["state"] == "queued" and body["id"] == job["id"]
    assert (body["error"], body["finished_at"], body["result"]) == (None, None, None)
    again = await finished(http, job["id"])
    # Its second attempt failed too: a job that had more than one attempt ends dead.
    assert again["state"] == "dead" and again["attempts"] == 2


async def test_a_cancelled_job_runs_again_to_success(http: httpx.AsyncClient) -> None:
    job = (await http.post("/v1/jobs", json={"task": "echo", "delay_s": 3600})).json()
    assert job["state"] == "scheduled"
    assert (await http.delete(f"/v1/jobs/{job['id']}")).json()["state"] == "cancelled"
    assert (await http.post(f"/v1/jobs/{job['id']}/retry")).status_code == 200
    done = await finished(http, job["id"])
    assert done["state"] == "succeeded" and done["attempts"] == 1


async def test_retry_is_idempotent_and_refuses_a_succeeded_job(http: httpx.AsyncClient) -> None:
    waiting = (await http.post("/v1/jobs", json={"task": "echo", "delay_s": 3600})).json()
    for _ in range(2):
        same = await http.post(f"/v1/jobs/{waiting['id']}/retry")
        assert same.status_code == 200 and same.json() == waiting
    running = (await http.post("/v1/jobs", json={"task": "sleep", "args": {"seconds": 30}})).json()
    first = await http.post(f"/v1/jobs/{running['id']}/retry")
    assert first.status_code == 200 and first.json()["state"] in ("queued", "running")
    done = (await http.post("/v1/jobs?wait=20", json={"task": "echo"})).json()
    refused = await http.post(f"/v1/jobs/{done['id']}/retry")
    assert refused.status_code == 409 and "succeeded" in refused.json()["detail"]
    assert (await http.get(f"/v1/jobs/{done['id']}")).json() == done
    await http.delete(f"/v1/jobs/{running['id']}")


async def test_retry_has_the_scopes_and_tenancy_of_cancel(http: httpx.AsyncClient) -> None:
    job = (await http.post("/v1/jobs?wait=20", json={"task": "fails"})).json()
    assert (await http.post(f"/v1/jobs/{job['id']}/retry", headers=READER)).status_code == 403
    hidden = await http.post(f"/v1/jobs/{job['id']}/retry", headers=OTHER)
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
    assert (await http.post("/v1/jobs/no-such-job/retry")).status_code == 404
    assert (await http.get(f"/v1/jobs/{job['id']}")).json()["state"] == "failed"  # untouched


async def test_a_delayed_job_runs_when_due(http: httpx.AsyncClient) -> None:
    job = (await http.post("/v1/jobs", json={"task": "echo", "delay_s": 0.5})).json()
    assert job["state"] == "scheduled" and job["run_at"] > job["created_at"]
    listed = (await http.get("/v1/jobs?state=scheduled")).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    done = await finished(http, job["id"])
    assert done["state"] == "succeeded" and done["run_at"] == job["run_at"]
    assert done["started_at"] >= job["run_at"]


def _iso(delta_s: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delta_s)).isoformat()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"delay_s": 1, "run_at": "2030-01-01T00:00:00Z"}, {"delay_s", "run_at"}),
        ({"run_at": "2001-01-01T00:00:00Z"}, {"run_at"}),
        ({"run_at": "2030-01-01 09:00"}, {"run_at"}),
        ({"run_at": 1893456000}, {"run_at"}),
        ({"delay_s": -1}, {"delay_s"}),
        ({"delay_s": "soon"}, {"delay_s"}),
    ],
)
async def test_bad_due_times_are_422_naming_the_field(
    http: httpx.AsyncClient, body: dict[str, Any], fields: set[str]
) -> None:
    response = await http.post("/v1/jobs", json={"task": "echo", **body})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == fields
    assert (await http.get("/v1/jobs")).json()["jobs"] == []


async def test_a_run_at_just_past_runs_at_once(http: httpx.AsyncClient) -> None:
    job = (await http.post("/v1/jobs?wait=20", json={"task": "echo", "run_at": _iso(-2)})).json()
    assert job["state"] == "succeeded" and job["run_at"] is None
