"""Jobs over the WebSocket: ``submit`` acks with the committed job, and the job's events
follow on the same connection without a subscribe. Real loopback sockets, in-process service."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.gateway.wsclient import Client

FINAL = ("succeeded", "failed", "cancelled", "dead")
TOKENS = {"submitter-tok1": ("submit",), "reader-token-1": ("subscribe",)}


async def connect(service: Any, token: str | None = None) -> Client:
    client = await Client.connect(service.ws, token=token)
    assert (await client.recv())["type"] == "welcome"
    return client


async def events_until_final(client: Client, job_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while not events or events[-1]["event"] != "state" or events[-1]["state"] not in FINAL:
        for message in await client.messages(1):
            assert message["channel"] == f"jobs:{job_id}"
            events.append(message["data"])
    return events


async def test_submit_acks_the_committed_job_then_streams_its_whole_story(service: Any) -> None:
    client = await connect(service)
    ack = await client.request(
        {"op": "submit", "id": 7, "task": "sleep", "args": {"seconds": 0.1, "steps": 2}}
    )
    assert ack["type"] == "ack" and ack["id"] == 7 and ack["created"] is True
    assert client.stash == []  # the ack came before any of the job's events
    job = ack["job"]
    assert job["state"] == "queued" and job["task"] == "sleep"
    async with httpx.AsyncClient(base_url=service.http) as http:
        same = (await http.get(f"/v1/jobs/{job['id']}")).json()
    assert same["id"] == job["id"]  # committed before the ack
    events = await events_until_final(client, job["id"])
    kinds = [(e["event"], e.get("state")) for e in events]
    # Subscribed before the job could start: even the first event is there.
    assert kinds == [
        ("state", "queued"),
        ("state", "running"),
        ("progress", None),
        ("progress", None),
        ("result", None),
        ("state", "succeeded"),
    ]
    await client.close()


async def test_many_submits_on_one_connection_each_get_their_events(service: Any) -> None:
    client = await connect(service)
    ids = []
    for n in range(5):
        ack = await client.request({"op": "submit", "id": n, "task": "echo", "args": {"n": n}})
        ids.append(ack["job"]["id"])
    results: dict[str, Any] = {}
    finals: set[str] = set()
    while len(finals) < 5:
        for message in await client.messages(1):
            job_id = message["channel"].removeprefix("jobs:")
            assert job_id in ids
            data = message["data"]
            if data["event"] == "result":
                results[job_id] = data["result"]
            if data["event"] == "state" and data["state"] == "succeeded":
                finals.add(job_id)
    assert [results[i] for i in ids] == [{"n": n} for n in range(5)]
    await client.close()


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"task": "nope"}, "task"),
        ({"task": "echo", "priority": "urgent"}, "priority"),
        ({"task": "echo", "timeout_s": -1}, "timeout_s"),
        ({"task": "echo", "args": [1]}, "args"),
        ({"task": "echo", "colour": "red"}, "colour"),
        ({}, "task"),
    ],
)
async def test_an_invalid_submit_is_an_error_frame_naming_the_field(
    service: Any, frame: dict[str, Any], field: str
) -> None:
    client = await connect(service)
    reply = await client.request({"op": "submit", "id": "s", **frame})
    assert reply["type"] == "error" and reply["id"] == "s" and reply["code"] == "invalid"
    assert field in [e["field"] for e in reply["errors"]]
    assert (await client.request({"op": "ping", "id": 1}))["type"] == "ack"  # still open
    async with httpx.AsyncClient(base_url=service.http) as http:
        assert (await http.get("/v1/jobs")).json()["jobs"] == []
    await client.close()


async def test_idempotent_submit_acks_the_earlier_job_and_replays_its_events(
    service: Any,
) -> None:
    body = {"task": "echo", "args": {"k": 1}, "idempotency_key": "ws-key"}
    first = await connect(service)
    earlier = (await first.request({"op": "submit", "id": 1, **body}))["job"]
    await events_until_final(first, earlier["id"])
    second = await connect(service)
    ack = await second.request({"op": "submit", "id": 2, **body})
    assert ack["created"] is False and ack["job"]["id"] == earlier["id"]
    events = await events_until_final(second, earlier["id"])
    assert events[0] == {"event": "state", "state": "queued", "attempt": 0}
    assert events[-1]["state"] == "succeeded"
    conflict = await second.request(
        {"op": "submit", "id": 3, "task": "echo", "args": {"k": 2}, "idempotency_key": "ws-key"}
    )
    assert conflict["type"] == "error" and conflict["code"] == "conflict"
    await first.close()
    await second.close()


async def test_submit_needs_the_submit_scope(service_factory: Any) -> None:
    service = await service_factory(auth={"tokens": TOKENS})
    reader = await connect(service, "reader-token-1")
    reply = await reader.request({"op": "submit", "id": 1, "task": "echo"})
    assert reply["type"] == "error" and reply["code"] == "forbidden"
    submitter = await connect(service, "submitter-tok1")
    ack = await submitter.request({"op": "submit", "id": 1, "task": "echo", "args": {"a": 1}})
    assert ack["type"] == "ack"
    events = await events_until_final(submitter, ack["job"]["id"])
    assert events[-1]["state"] == "succeeded"  # its own job's events need no subscribe scope
    await reader.close()
    await submitter.close()


async def test_finished_jobs_do_not_pile_up_subscriptions(service: Any) -> None:
    client = await connect(service)
    for n in range(4):
        ack = await client.request({"op": "submit", "id": n, "task": "echo", "args": {"n": n}})
        await events_until_final(client, ack["job"]["id"])
    # Each submit drops the subscriptions of jobs already finished: only the last remains.
    async with httpx.AsyncClient(base_url=service.http) as http:
        stats = (await http.get("/v1/stats")).json()
    assert stats["gateway"]["hub"]["subscriptions"] == 1
    await client.close()


async def test_submit_over_the_websocket_with_a_redis_broker(
    service_factory: Any, redis_url: str
) -> None:
    service = await service_factory(server={"broker": redis_url})
    client = await connect(service)
    ack = await client.request({"op": "submit", "id": 1, "task": "echo", "args": {"r": 1}})
    assert ack["type"] == "ack" and ack["job"]["state"] == "queued"
    events = await events_until_final(client, ack["job"]["id"])
    assert events[0]["state"] == "queued" and events[-1]["state"] == "succeeded"
    assert {"event": "result", "result": {"r": 1}} in events
    await client.close()


async def test_a_delayed_submit_streams_scheduled_then_its_run(service: Any) -> None:
    client = await connect(service)
    ack = await client.request({"op": "submit", "id": 1, "task": "echo", "delay_s": 0.3})
    assert ack["type"] == "ack" and ack["job"]["state"] == "scheduled"
    events = await events_until_final(client, ack["job"]["id"])
    states = [e["state"] for e in events if e["event"] == "state"]
    assert states == ["scheduled", "queued", "running", "succeeded"]
    bad = await client.request({"op": "submit", "id": 2, "task": "echo", "run_at": "soon"})
    assert bad["type"] == "error" and "run_at" in bad["message"]
    await client.close()
