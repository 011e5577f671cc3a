"""The job API over real HTTP against an in-process service."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from perfgate.config import TaskConfig
from tests.gateway.wsclient import Client


@pytest.fixture
async def http(service: Any) -> Any:
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as client:
        yield client


async def test_submit_then_wait_for_the_result(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/jobs", json={"task": "echo", "args": {"x": 1}})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] == "queued" and job["task"] == "echo" and job["priority"] == "normal"
    done = (await http.get(f"/v1/jobs/{job['id']}?wait=20")).json()
    assert done["state"] == "succeeded"
    assert done["result"] == {"x": 1}
    assert done["attempts"] == 1
    assert done["created_at"].endswith("Z") and done["finished_at"].endswith("Z")


async def test_late_subscriber_sees_the_whole_story(service: Any, http: httpx.AsyncClient) -> None:
    job = (
        await http.post("/v1/jobs", json={"task": "sleep", "args": {"seconds": 0.2, "steps": 2}})
    ).json()
    await http.get(f"/v1/jobs/{job['id']}?wait=20")
    ws = await Client.connect(service.ws)
    await ws.recv()
    ack = await ws.request({"op": "subscribe", "channel": f"jobs:{job['id']}", "since": 0, "id": 1})
    assert ack["type"] == "ack" and ack["recovered"] is True
    events = [m["data"] for m in await ws.messages(6)]
    kinds = [(e["event"], e.get("state")) for e in events]
    assert kinds == [
        ("state", "queued"),
        ("state", "running"),
        ("progress", None),
        ("progress", None),
        ("result", None),
        ("state", "succeeded"),
    ]
    assert events[-2]["result"] == {"slept_s": 0.2}


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"content": b'{"task": "echo"', "headers": {"Content-Type": "application/json"}},
            400,
            "bad_request",
        ),
        (
            {
                "content": b"task=echo",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            415,
            "unsupported_media_type",
        ),
        ({"content": b"", "headers": {"Content-Type": "application/json"}}, 400, "bad_request"),
        ({"content": b"[1, 2]", "headers": {"Content-Type": "application/json"}}, 422, "invalid"),
        (
            {"content": b'{"task": NaN}', "headers": {"Content-Type": "application/json"}},
            400,
            "bad_request",
        ),
        ({"json": {"task": "nope"}}, 422, "invalid"),
        ({"json": {"task": "echo", "priority": "urgent"}}, 422, "invalid"),
        ({"json": {"task": "echo", "timeout_s": -1}}, 422, "invalid"),
        ({"json": {"task": "echo", "args": {"not an identifier": 1}}}, 422, "invalid"),
        (
            {
                "content": b'{"task": "echo", "args": {"d": "' + b"x" * 1_100_000 + b'"}}',
                "headers": {"Content-Type": "application/json"},
            },
            413,
            "too_large",
        ),
    ],
)
async def test_bad_submits_are_problem_documents(
    http: httpx.AsyncClient, kwargs: dict[str, Any], status: int, code: str
) -> None:
    response = await http.post("/v1/jobs", **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_unknown_job_is_404(http: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/v1/jobs/nope"),
        ("DELETE", "/v1/jobs/nope"),
        ("GET", "/v1/jobs/nope/logs"),
    ]:
        response = await http.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "not_found"


async def test_idempotency_key(http: httpx.AsyncClient) -> None:
    body = {"task": "echo", "args": {"n": 1}, "idempotency_key": "order-42"}
    first = await http.post("/v1/jobs", json=body)
    again = await http.post("/v1/jobs", json=body)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = await http.post("/v1/jobs", json={**body, "args": {"n": 2}})
    assert other.status_code == 409 and other.json()["code"] == "conflict"


async def test_cancel_is_idempotent(http: httpx.AsyncClient) -> None:
    job = (await http.post("/v1/jobs", json={"task": "sleep", "args": {"seconds": 60}})).json()
    first = await http.delete(f"/v1/jobs/{job['id']}")
    assert first.status_code == 200 and first.json()["state"] == "cancelled"
    second = await http.delete(f"/v1/jobs/{job['id']}")
    assert second.status_code == 200 and second.json()["state"] == "cancelled"
    assert (await http.get(f"/v1/jobs/{job['id']}")).json()["state"] == "cancelled"


async def test_list_with_state_filter_and_cursor(http: httpx.AsyncClient) -> None:
    ids = [
        (await http.post("/v1/jobs", json={"task": "echo", "args": {"i": i}})).json()["id"]
        for i in range(5)
    ]
    for job_id in ids:
        await http.get(f"/v1/jobs/{job_id}?wait=20")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "state": "succeeded"}
        if cursor:
            params["cursor"] = cursor
        page = (await http.get("/v1/jobs", params=params)).json()
        seen.extend(j["id"] for j in page["jobs"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert (await http.get("/v1/jobs", params={"state": "bogus"})).status_code == 422
    assert (await http.get("/v1/jobs", params={"limit": "0"})).status_code == 422
    assert (await http.get("/v1/jobs", params={"cursor": "garbage"})).status_code == 400


async def test_command_task_streams_logs_and_fails_on_exit_status(service_factory: Any) -> None:
    script = 'echo "hello $1"; echo oops >&2; exit "$2"'
    tasks = {
        "greet": TaskConfig(name="greet", command=("sh", "-c", script, "sh", "{who}", "{code}"))
    }
    service = await service_factory(tasks=tasks)
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        ok = (
            await http.post(
                "/v1/jobs", json={"task": "greet", "args": {"who": "a b; rm -rf /", "code": 0}}
            )
        ).json()
        done = (await http.get(f"/v1/jobs/{ok['id']}?wait=20")).json()
        assert done["state"] == "succeeded"
        lines = (await http.get(f"/v1/jobs/{ok['id']}/logs")).json()["lines"]
        # One whole argument, no shell splitting; stdout and stderr are separate pipes, so
        # their relative order is not defined.
        assert sorted((line["stream"], line["line"]) for line in lines) == [
            ("stderr", "oops"),
            ("stdout", "hello a b; rm -rf /"),
        ]
        bad = (
            await http.post("/v1/jobs", json={"task": "greet", "args": {"who": "x", "code": 3}})
        ).json()
        failed = (await http.get(f"/v1/jobs/{bad['id']}?wait=20")).json()
        # No retries configured: one attempt, failed (not dead), naming the exit status.
        assert failed["state"] == "failed"
        assert failed["attempts"] == 1
        assert failed["error"] == {
            "type": "CommandFailed",
            "kind": "exit",
            "exit_code": 3,
            "message": "exited with code 3",
        }
        missing = await http.post("/v1/jobs", json={"task": "greet", "args": {"who": "x"}})
        assert missing.status_code == 422
        nested = await http.post(
            "/v1/jobs", json={"task": "greet", "args": {"who": [1], "code": 0}}
        )
        assert nested.status_code == 422


async def test_cacheable_task_is_served_from_cache(http: httpx.AsyncClient) -> None:
    body = {"task": "sha256", "args": {"data": "abc", "rounds": 1000}}
    first = (await http.post("/v1/jobs", json=body)).json()
    done = (await http.get(f"/v1/jobs/{first['id']}?wait=20")).json()
    assert done["state"] == "succeeded" and done["cached"] is False
    second = await http.post("/v1/jobs", json=body)
    assert second.status_code == 202
    cached = second.json()
    assert cached["state"] == "succeeded" and cached["cached"] is True
    assert cached["result"] == done["result"] and cached["id"] != done["id"]


async def test_publish_to_a_channel(service: Any, http: httpx.AsyncClient) -> None:
    ws = await Client.connect(service.ws)
    await ws.recv()
    await ws.request({"op": "subscribe", "channel": "news", "id": 1})
    response = await http.post("/v1/channels/news/messages", json={"data": {"hello": "world"}})
    assert response.status_code == 202 and response.json()["offset"] == 1
    [message] = await ws.messages(1)
    assert message["channel"] == "news" and message["data"] == {"hello": "world"}
    assert (await http.post("/v1/channels/jobs:x/messages", json={"data": 1})).status_code in (
        403,
        422,
    )
    assert (await http.post("/v1/channels/bad name!/messages", json={"data": 1})).status_code == 422


async def test_an_empty_state_filter_is_invalid_not_ignored(http: httpx.AsyncClient) -> None:
    # Found by schemathesis: "?state=" listed every job although the document allows only
    # the state names.
    response = await http.get("/v1/jobs", params={"state": ""})
    assert response.status_code == 422
