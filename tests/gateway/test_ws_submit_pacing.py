"""How ``submit`` frames are paced on one connection: concurrently (so pipelined submits can
share commits), at most ``SUBMITS_IN_FLIGHT`` at a time (then the reader stops reading),
outside the frame rate limit when they create jobs, inside it when they do not; and a job's
final state is written at once, whatever the batch window. A stand-in job service on a real
gateway over loopback sockets."""

from __future__ import annotations

from typing import Any

import trio

from perfgate.errors import ValidationError
from perfgate.gateway.jobs import SUBMITS_IN_FLIGHT
from perfgate.store import JobRecord
from tests.gateway.conftest import Start, eventually
from tests.gateway.wsclient import Client, ConnectionClosed


class StandInJobs:
    """A :class:`~perfgate.gateway.jobs.JobSubmitter`: a submit is held until ``release`` is
    set; ``task: "bad"`` is refused; ``publish`` says what to publish after each commit."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.in_flight = 0
        self.peak = 0
        self.calls = 0
        self.release = trio.Event()
        self.release.set()
        self.events: list[dict[str, Any]] = []

    async def submit(
        self, body: Any, *, tenant: str, job_id: str | None = None
    ) -> tuple[JobRecord, bool]:
        if body.get("task") == "bad":
            raise ValidationError("task: unknown task", errors=[{"field": "task"}])
        assert job_id is not None
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        return JobRecord(id=job_id, task=body["task"], args=body.get("args") or {}), True

    async def run_story(self, job_id: str) -> None:
        for data in self.events:
            await self.hub.publish(f"jobs:{job_id}", data)


async def connect(url: str) -> Client:
    client = await Client.connect(url)
    assert (await client.recv())["type"] == "welcome"
    return client


async def start(start_gateway: Start, **config: Any) -> tuple[StandInJobs, str]:
    gateway, url = await start_gateway(**config)
    jobs = StandInJobs(gateway.hub)
    gateway.jobs = jobs
    return jobs, url


async def test_pipelined_submits_are_handled_together_not_one_after_another(
    start_gateway: Start,
) -> None:
    jobs, url = await start(start_gateway)
    jobs.release = trio.Event()  # no submit finishes until three are being committed
    client = await connect(url)
    for n in range(3):
        await client.send({"op": "submit", "id": n, "task": "echo", "args": {"n": n}})
    await eventually(lambda: jobs.in_flight == 3)
    jobs.release.set()
    acks = [await client.recv() for _ in range(3)]
    assert sorted(a["id"] for a in acks) == [0, 1, 2]
    assert all(a["type"] == "ack" and a["created"] is True for a in acks)
    await client.close()


async def test_submits_in_flight_are_bounded_and_the_rest_wait_unread(
    start_gateway: Start,
) -> None:
    jobs, url = await start(start_gateway)
    jobs.release = trio.Event()
    client = await connect(url)
    extra = 10
    for n in range(SUBMITS_IN_FLIGHT + extra):
        await client.send({"op": "submit", "id": n, "task": "echo"})
    await eventually(lambda: jobs.in_flight == SUBMITS_IN_FLIGHT)
    await trio.sleep(0.2)  # the reader waits: no further submit reaches the service
    assert jobs.calls == SUBMITS_IN_FLIGHT
    jobs.release.set()
    acks = [await client.recv() for _ in range(SUBMITS_IN_FLIGHT + extra)]
    assert sorted(a["id"] for a in acks) == list(range(SUBMITS_IN_FLIGHT + extra))
    assert jobs.peak == SUBMITS_IN_FLIGHT
    await client.close()


async def test_submits_that_create_jobs_are_not_held_to_the_frame_rate(
    start_gateway: Start,
) -> None:
    _jobs, url = await start(start_gateway, rate_limit_per_s=5.0)
    client = await connect(url)
    for n in range(40):  # eight times the per-second frame budget, at once
        await client.send({"op": "submit", "id": n, "task": "echo"})
    acks = [await client.recv() for _ in range(40)]
    assert all(a["type"] == "ack" for a in acks)
    assert (await client.request({"op": "ping", "id": "p"}))["type"] == "ack"  # still open
    await client.close()


async def test_a_flood_of_refused_submits_is_closed_by_the_frame_rate(
    start_gateway: Start,
) -> None:
    _jobs, url = await start(start_gateway, rate_limit_per_s=5.0)
    client = await connect(url)
    for n in range(40):
        try:
            await client.send({"op": "submit", "id": n, "task": "bad"})
        except ConnectionClosed:  # the server may close while we still send
            break
    assert await client.wait_closed() == 1008


async def test_a_jobs_final_state_is_written_at_once_not_after_the_batch_window(
    start_gateway: Start,
) -> None:
    # A window far longer than the test's deadline: only the final state's flush gets it out.
    jobs, url = await start(start_gateway, batch_window_ms=60_000.0)
    jobs.events = [
        {"event": "state", "state": "queued", "attempt": 0},
        {"event": "state", "state": "running", "attempt": 1},
        {"event": "result", "result": 1},
        {"event": "state", "state": "succeeded", "attempt": 1},
    ]
    client = await connect(url)
    ack = await client.request({"op": "submit", "id": 1, "task": "echo"})
    await jobs.run_story(ack["job"]["id"])
    with trio.fail_after(20):
        events = [m["data"] for m in await client.messages(4, wait_s=20)]
    assert events == jobs.events
    await client.close()


async def test_a_drain_acks_the_submits_in_flight_before_closing(start_gateway: Start) -> None:
    gateway, url = await start_gateway()
    jobs = StandInJobs(gateway.hub)
    gateway.jobs = jobs
    jobs.release = trio.Event()
    client = await connect(url)
    await client.send({"op": "submit", "id": 1, "task": "echo"})
    await eventually(lambda: jobs.in_flight == 1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.drain, 5.0)
        await trio.sleep(0.1)  # the drain has asked the connection to close
        jobs.release.set()
    ack = await client.recv()
    assert ack["type"] == "ack" and ack["id"] == 1  # committed, so acked, then closed
    assert await client.wait_closed() == 1001


async def test_a_connection_ending_with_a_submit_in_flight_leaves_no_subscription(
    start_gateway: Start,
) -> None:
    gateway, url = await start_gateway()
    jobs = StandInJobs(gateway.hub)
    gateway.jobs = jobs
    jobs.release = trio.Event()
    client = await connect(url)
    await client.send({"op": "submit", "id": 1, "task": "echo"})
    await eventually(lambda: jobs.in_flight == 1)
    await client.close()
    await eventually(lambda: gateway.stats()["connections"] == 0)
    jobs.release.set()
    await eventually(lambda: jobs.in_flight == 0)
    await trio.sleep(0.1)
    assert gateway.hub.stats()["subscriptions"] == 0
