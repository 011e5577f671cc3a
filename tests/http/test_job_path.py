"""One request per job (``POST /v1/jobs?wait=S``) and many jobs per request
(``POST /v1/jobs:batch``), over real HTTP against an in-process service."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio


@pytest.fixture
async def http(service: Any) -> Any:
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as client:
        yield client


async def test_submit_with_wait_answers_200_with_the_finished_job(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/v1/jobs?wait=20", json={"task": "echo", "args": {"x": 7}})
    assert response.status_code == 200
    job = response.json()
    assert job["state"] == "succeeded" and job["result"] == {"x": 7}
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"


async def test_submit_with_a_short_wait_answers_202_with_the_job_as_it_stands(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/v1/jobs?wait=0.2", json={"task": "sleep", "args": {"seconds": 30}})
    assert response.status_code == 202
    job = response.json()
    assert job["state"] in ("queued", "running")
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    await http.delete(f"/v1/jobs/{job['id']}")


async def test_submit_wait_is_capped_by_max_wait_s(service_factory: Any) -> None:
    service = await service_factory(http={"max_wait_s": 0.3})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        with trio.fail_after(15):  # without the cap the request would hold for 60 s
            response = await http.post(
                "/v1/jobs?wait=60", json={"task": "sleep", "args": {"seconds": 30}}
            )
    assert response.status_code == 202


@pytest.mark.parametrize("wait", ["abc", "-1", "nan", "inf", "", "1e999"])
async def test_a_bad_wait_is_422_naming_it_and_submits_nothing(
    http: httpx.AsyncClient, wait: str
) -> None:
    response = await http.post(f"/v1/jobs?wait={wait}", json={"task": "echo"})
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in problem["errors"]] == ["wait"]
    assert (await http.get("/v1/jobs")).json()["jobs"] == []


async def test_submit_with_wait_replays_an_idempotent_job(http: httpx.AsyncClient) -> None:
    body = {"task": "echo", "args": {"n": 1}, "idempotency_key": "k-wait"}
    first = await http.post("/v1/jobs?wait=20", json=body)
    again = await http.post("/v1/jobs?wait=20", json=body)
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


async def test_batch_answers_each_item_and_one_bad_item_sinks_nothing(
    http: httpx.AsyncClient,
) -> None:
    taken = await http.post(
        "/v1/jobs", json={"task": "echo", "args": {"a": 1}, "idempotency_key": "taken"}
    )
    response = await http.post(
        "/v1/jobs:batch",
        json={
            "jobs": [
                {"task": "echo", "args": {"i": 0}},
                {"task": "nope"},
                {"task": "echo", "args": {"a": 2}, "idempotency_key": "taken"},
                {"task": "echo", "args": {"a": 1}, "idempotency_key": "taken"},
                {"task": "echo", "priority": "urgent"},
                "not an object",
                {"task": "echo", "args": {"i": 6}},
            ]
        },
    )
    assert response.status_code == 200
    items = response.json()["jobs"]
    assert [item["status"] for item in items] == [202, 422, 409, 200, 422, 422, 202]
    assert items[1]["error"]["code"] == "invalid"
    assert [e["field"] for e in items[1]["error"]["errors"]] == ["task"]
    assert [e["field"] for e in items[4]["error"]["errors"]] == ["priority"]
    assert items[2]["error"]["code"] == "conflict"
    assert items[3]["job"]["id"] == taken.json()["id"]
    for index, expected in ((0, {"i": 0}), (6, {"i": 6})):
        job = items[index]["job"]
        assert job["state"] == "queued"
        done = (await http.get(f"/v1/jobs/{job['id']}?wait=20")).json()
        assert done["state"] == "succeeded" and done["result"] == expected


async def test_batch_with_the_same_new_key_twice_makes_one_job(http: httpx.AsyncClient) -> None:
    body = {"task": "echo", "args": {"k": 1}, "idempotency_key": "twice"}
    items = (await http.post("/v1/jobs:batch", json={"jobs": [body, body]})).json()["jobs"]
    assert [item["status"] for item in items] == [202, 200]
    assert items[0]["job"]["id"] == items[1]["job"]["id"]


@pytest.mark.parametrize(
    "body",
    [{"jobs": []}, {"jobs": [{"task": "echo"}] * 4}, {"jobs": "echo"}, {}, {"jobs": [], "x": 1}],
)
async def test_a_bad_batch_is_422_naming_the_field(service_factory: Any, body: Any) -> None:
    service = await service_factory(http={"max_batch_jobs": 3})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        response = await http.post("/v1/jobs:batch", json=body)
        assert response.status_code == 422
        fields = {e["field"] for e in response.json()["errors"]}
        assert fields & {"jobs", "x"}
        assert (await http.get("/v1/jobs")).json()["jobs"] == []


async def test_batch_items_beyond_the_queue_room_get_429(service_factory: Any) -> None:
    service = await service_factory(pool={"min_workers": 1, "max_workers": 1, "max_queue": 3})
    sleep = {"task": "sleep", "args": {"seconds": 30}}
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        items = (await http.post("/v1/jobs:batch", json={"jobs": [sleep] * 6})).json()["jobs"]
        statuses = [item["status"] for item in items]
        accepted = statuses.count(202)
        assert 1 <= accepted <= 3 and statuses == [202] * accepted + [429] * (6 - accepted)
        assert items[-1]["error"]["code"] == "queue_full"
        listed = (await http.get("/v1/jobs")).json()["jobs"]
        assert len(listed) == accepted  # nothing refused was journalled
        for item in items[:accepted]:
            await http.delete(f"/v1/jobs/{item['job']['id']}")


async def test_submit_routes_are_in_the_openapi_document(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/openapi.json")).json()
    submit = doc["paths"]["/v1/jobs"]["post"]
    assert [p["name"] for p in submit["parameters"]] == ["wait", "Idempotency-Key"]
    batch = doc["paths"]["/v1/jobs:batch"]["post"]
    body = batch["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["jobs"]["maxItems"] == 100
    assert "200" in batch["responses"] and "503" in batch["responses"]
