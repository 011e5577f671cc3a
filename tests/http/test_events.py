"""``GET /v1/jobs/{id}/events``: a job's events as Server-Sent Events over plain HTTP.

The wire format and the stream's buffer policy are tested without I/O; the stream itself
against the real service on loopback sockets (httpx reading the body as it arrives).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from perfgate.broker import MemoryHub
from perfgate.config import HttpConfig
from perfgate.errors import ValidationError
from perfgate.http.events import EventStreams, _Sink
from perfgate.http.sse import StreamBudget, format_event, parse_last_event_id
from tests.conftest import RunningService

# -- the wire format and the budget, without I/O ----------------------------------------------


def test_last_event_id_is_epoch_colon_offset() -> None:
    assert parse_last_event_id(None) is None
    assert parse_last_event_id("") is None
    assert parse_last_event_id("a1b2c3d4.7:42") == ("a1b2c3d4.7", 42)
    assert parse_last_event_id("redis:epoch:3") == ("redis:epoch", 3)  # the last colon splits


@pytest.mark.parametrize(
    "raw", ["42", ":42", "e:", "e:-1", "e:4x", "e:²", "e f:1", "e:" + "9" * 19, "é:1"]
)
def test_a_malformed_last_event_id_is_refused_naming_the_header(raw: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_last_event_id(raw)
    assert caught.value.extra["errors"][0]["field"] == "Last-Event-ID"


def test_an_event_is_id_event_and_data_lines_then_a_blank_line() -> None:
    assert format_event("log", '{"a":1}', id_="e:3") == b'id: e:3\nevent: log\ndata: {"a":1}\n\n'
    # A line break in the data would end the field: it is split over data lines instead.
    assert format_event("x", "a\nb") == b"event: x\ndata: a\ndata: b\n\n"


def test_the_budget_drops_progress_and_overflows_on_anything_else() -> None:
    budget = StreamBudget(100)
    assert budget.admit(500, "log")  # an empty buffer takes one message, however large
    assert not budget.admit(1, "progress") and budget.dropped == 1 and not budget.overflowed
    budget.release(500)
    assert budget.admit(60, "log") and budget.admit(40, "progress")
    assert not budget.admit(1, "progress") and budget.dropped == 2
    assert not budget.admit(1, "state") and budget.overflowed
    budget.release(100)
    assert not budget.admit(1, "log")  # overflowed for good: the stream is ending


async def test_a_slow_streams_memory_stays_bounded_and_it_ends_instead_of_losing() -> None:
    hub = MemoryHub()
    streams = EventStreams(HttpConfig(events_queue_bytes=2000))
    send, receive = streams.open()
    budget = StreamBudget(2000)
    sink = _Sink(send, budget)
    await hub.subscribe("jobs:j1", sink)
    for i in range(50):
        await hub.publish("jobs:j1", {"event": "progress", "fraction": i / 50, "message": ""})
        assert budget.queued_bytes <= 2000
    assert budget.dropped > 0 and not budget.overflowed
    for _ in range(100):
        await hub.publish("jobs:j1", {"event": "log", "line": "x" * 100, "stream": "task"})
        assert budget.queued_bytes <= 2000
    assert budget.overflowed
    queued = []
    with pytest.raises(trio.EndOfChannel):  # the reader sends what is queued, then ends
        while True:
            queued.append(await receive.receive())
    assert len(queued) < 50 + 100
    streams.close(send, budget)
    assert streams.stats()["slow_readers_closed"] == 1 and streams.stats()["open"] == 0


# -- the stream against the real service ------------------------------------------------------


def parse_stream(text: str) -> list[dict[str, Any]]:
    """Events (and comments) of an SSE body, as dicts."""
    events: list[dict[str, Any]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event: dict[str, Any] = {}
        data: list[str] = []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if line.startswith(":"):
                event.setdefault("comments", []).append(line[1:].strip())
            elif field == "data":
                data.append(value)
            else:
                event[field] = value
        if data:
            event["data"] = json.loads("\n".join(data))
        events.append(event)
    return events


async def read_events(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    stop_after: int | None = None,
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """GET ``url`` as a stream; the events that arrived, stopping after ``stop_after`` real
    events (then disconnecting), or at the end of the stream."""
    text = ""
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            return response, []
        async for chunk in response.aiter_text():
            text += chunk
            events = [e for e in parse_stream(text) if "event" in e]
            if stop_after is not None and len(events) >= stop_after and text.endswith("\n\n"):
                break
    return response, parse_stream(text)


def real(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if "event" in e]


def channel_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The channel's events, past a leading snapshot: a stream opened before the job's first
    event was published (still ``queued``) begins with the job as it is, at offset 0."""
    if events and events[0]["event"] == "snapshot":
        assert events[0]["id"].endswith(":0") and events[0]["data"]["state"] == "queued"
        return events[1:]
    return events


@pytest.fixture
async def http(service: RunningService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as client:
        yield client


async def submit(http: httpx.AsyncClient, body: dict[str, Any], **kw: Any) -> str:
    response = await http.post("/v1/jobs", json=body, **kw)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@pytest.mark.timeout(30)
async def test_a_job_streams_its_events_with_ids_and_the_stream_ends_after_the_last(
    http: httpx.AsyncClient,
) -> None:
    job_id = await submit(http, {"task": "sleep", "args": {"seconds": 0.3, "steps": 3}})
    response, events = await read_events(http, f"/v1/jobs/{job_id}/events")
    assert response.status_code == 200
    events = channel_events(real(events))
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-accel-buffering"] == "no"
    kinds = [e["event"] for e in events]
    assert kinds.count("progress") == 3 and kinds[-2:] == ["result", "state"]
    assert events[-1]["data"]["state"] == "succeeded"
    assert events[-2]["data"]["result"] == {"slept_s": 0.3} or "result" in events[-2]["data"]
    assert all(e["data"]["event"] == e["event"] for e in events)
    epochs = {e["id"].rpartition(":")[0] for e in events}
    offsets = [int(e["id"].rpartition(":")[2]) for e in events]
    assert len(epochs) == 1
    assert offsets == list(range(1, len(offsets) + 1))  # the whole history, no gap


@pytest.mark.timeout(30)
async def test_last_event_id_resumes_without_loss_or_duplicate(http: httpx.AsyncClient) -> None:
    job_id = await submit(http, {"task": "sleep", "args": {"seconds": 1.0, "steps": 10}})
    url = f"/v1/jobs/{job_id}/events"
    _, first = await read_events(http, url, stop_after=3)
    first = channel_events(real(first))
    last_id = first[-1]["id"]
    _, rest = await read_events(http, url, headers={"Last-Event-ID": last_id})
    rest = real(rest)
    assert all(e["event"] != "snapshot" for e in rest)
    offsets = [int(e["id"].rpartition(":")[2]) for e in first + rest]
    assert offsets == list(range(1, len(offsets) + 1))
    assert rest[-1]["data"] == {"event": "state", "state": "succeeded", "attempt": 1}
    # Resuming after the final event: nothing more, and 204 tells EventSource to stop.
    done = await http.get(url, headers={"Last-Event-ID": rest[-1]["id"]})
    assert done.status_code == 204


@pytest.mark.timeout(30)
async def test_a_resume_from_another_epoch_gets_a_snapshot(http: httpx.AsyncClient) -> None:
    job_id = await submit(http, {"task": "echo", "args": {"x": 1}})
    await http.get(f"/v1/jobs/{job_id}?wait=10")
    _, events = await read_events(
        http, f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "gone.1:2"}
    )
    events = real(events)
    assert [e["event"] for e in events] == ["snapshot"]  # the job is finished: then the end
    snapshot = events[0]["data"]
    assert snapshot["id"] == job_id and snapshot["state"] == "succeeded"
    assert snapshot["result"] == {"x": 1}
    assert events[0]["id"].rpartition(":")[0] != "gone.1"


@pytest.mark.timeout(30)
async def test_bad_requests_are_problems(http: httpx.AsyncClient) -> None:
    job_id = await submit(http, {"task": "echo", "args": {}})
    bad = await http.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "nonsense"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "Last-Event-ID"
    missing = await http.get("/v1/jobs/nope/events")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


@pytest.mark.timeout(30)
async def test_an_idle_stream_has_heartbeats(service_factory: Any) -> None:
    service = await service_factory(http={"events_heartbeat_s": 0.1})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        job_id = await submit(http, {"task": "sleep", "args": {"seconds": 0.8, "steps": 1}})
        _, events = await read_events(http, f"/v1/jobs/{job_id}/events")
    keepalives = [e for e in events if "keepalive" in e.get("comments", [])]
    assert len(keepalives) >= 3
    assert real(events)[-1]["data"]["state"] == "succeeded"


async def stats(http: httpx.AsyncClient) -> dict[str, Any]:
    snapshot: dict[str, Any] = (await http.get("/v1/stats")).json()
    return snapshot


@pytest.mark.timeout(30)
async def test_a_client_that_goes_away_leaves_nothing_behind(http: httpx.AsyncClient) -> None:
    job_id = await submit(http, {"task": "sleep", "args": {"seconds": 5, "steps": 50}})
    _, events = await read_events(http, f"/v1/jobs/{job_id}/events", stop_after=2)
    assert len(real(events)) >= 2
    with trio.fail_after(5):
        while True:
            snapshot = await stats(http)
            if snapshot["sources"]["event_streams"]["open"] == 0:
                break
            await trio.sleep(0.02)
    assert snapshot["sources"]["event_streams"]["opened"] == 1
    assert snapshot["gateway"]["hub"]["subscriptions"] == 0  # the stream unsubscribed


@pytest.mark.timeout(30)
async def test_a_drain_ends_the_stream_cleanly(
    service: RunningService, http: httpx.AsyncClient
) -> None:
    job_id = await submit(http, {"task": "sleep", "args": {"seconds": 3, "steps": 30}})
    text = ""
    stopping = False
    started = trio.current_time()
    async with http.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        async for chunk in response.aiter_text():
            text += chunk
            if "event: progress" in text and not stopping:
                stopping = True
                service.supervisor.request_stop()
    # The body ended (no exception reading it) before the job or the drain deadline did.
    assert trio.current_time() - started < 2.5
    events = parse_stream(text)
    assert "server draining: reconnect with Last-Event-ID" in events[-1]["comments"]


@pytest.mark.timeout(30)
async def test_the_same_scopes_and_tenancy_as_getting_the_job(service_factory: Any) -> None:
    tokens = {
        "acme-token": {"scopes": ["submit", "subscribe"], "tenant": "acme"},
        "bravo-token": {"scopes": ["submit", "subscribe"], "tenant": "bravo"},
        "acme-publisher": {"scopes": ["publish"], "tenant": "acme"},
        "root-token": {"scopes": ["admin"]},
    }
    service = await service_factory(auth={"tokens": tokens})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        acme = {"Authorization": "Bearer acme-token"}
        job_id = await submit(http, {"task": "echo", "args": {"t": 1}}, headers=acme)
        url = f"/v1/jobs/{job_id}/events"
        assert (await http.get(url)).status_code == 401
        assert (
            await http.get(url, headers={"Authorization": "Bearer acme-publisher"})
        ).status_code == 403
        other = await http.get(url, headers={"Authorization": "Bearer bravo-token"})
        assert other.status_code == 404 and other.json()["detail"] == (
            await http.get(
                "/v1/jobs/unknown/events", headers={"Authorization": "Bearer bravo-token"}
            )
        ).json()["detail"].replace("unknown", job_id)
        for token in ("acme-token", "root-token"):
            _, events = await read_events(http, url, headers={"Authorization": f"Bearer {token}"})
            assert real(events)[-1]["data"]["state"] == "succeeded"


@pytest.mark.timeout(60)
async def test_with_redis_the_stream_resumes_without_loss(
    service_factory: Any, redis_url: str
) -> None:
    service = await service_factory(server={"broker": redis_url})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        job_id = await submit(http, {"task": "sleep", "args": {"seconds": 0.6, "steps": 6}})
        url = f"/v1/jobs/{job_id}/events"
        _, first = await read_events(http, url, stop_after=2)
        first = channel_events(real(first))
        _, rest = await read_events(http, url, headers={"Last-Event-ID": first[-1]["id"]})
        rest = real(rest)
        offsets = [int(e["id"].rpartition(":")[2]) for e in first + rest]
        assert offsets == list(range(1, len(offsets) + 1))
        assert [e["event"] for e in first + rest].count("progress") == 6
        assert rest[-1]["data"]["state"] == "succeeded"
        assert (await http.get(url, headers={"Last-Event-ID": rest[-1]["id"]})).status_code == 204
