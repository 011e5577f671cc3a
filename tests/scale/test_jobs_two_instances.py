"""Jobs shared by two ``perfgate serve --broker redis://...`` processes on one redis-server:
the queue is a Redis Stream with a consumer group, job state lives in Redis."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.helpers import start_server, stop_server
from tests.redis_server import RedisServer, _command

Instance = dict[str, Any]
LEASE_S = 2.0
#: The jobs one instance of ``one_worker_pair`` holds at once: twice its one worker.
INSTANCE_CAPACITY = 2
CONFIG = """
[tasks.say]
command = ["echo", "{word}"]
timeout_s = 10
"""


@pytest.fixture
def pair(tmp_path: Path, redis_url: str) -> Iterator[tuple[Instance, Instance]]:
    yield from start_pair(tmp_path, redis_url, {})


@pytest.fixture
def one_worker_pair(tmp_path: Path, redis_url: str) -> Iterator[tuple[Instance, Instance]]:
    """Two instances of one worker each: a third job waits in the shared queue."""
    yield from start_pair(
        tmp_path, redis_url, {"PERFGATE_POOL_MIN_WORKERS": "1", "PERFGATE_POOL_MAX_WORKERS": "1"}
    )


def start_pair(
    tmp_path: Path, redis_url: str, extra_env: dict[str, str]
) -> Iterator[tuple[Instance, Instance]]:
    procs: list[subprocess.Popen[bytes]] = []
    ready: list[Instance] = []
    env = {"PERFGATE_SERVER_JOB_LEASE_S": str(LEASE_S), **extra_env}
    try:
        for name in ("a", "b"):
            home = tmp_path / name
            home.mkdir()
            (home / "perfgate.toml").write_text(CONFIG)
            proc, info = start_server(home, "--broker", redis_url, env=env)
            procs.append(proc)
            ready.append({**info, "proc": proc})
        yield ready[0], ready[1]
    finally:
        for proc in procs:
            stop_server(proc)


async def call(instance: Instance, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=instance["http"], timeout=30) as client:
        return await client.request(method, path, **kwargs)


async def submit(instance: Instance, body: dict[str, Any]) -> dict[str, Any]:
    response = await call(instance, "POST", "/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


async def until_state(instance: Instance, job_id: str, state: str) -> dict[str, Any]:
    with trio.fail_after(20):
        while True:
            job: dict[str, Any] = (await call(instance, "GET", f"/v1/jobs/{job_id}")).json()
            if job["state"] == state:
                return job
            await trio.sleep(0.05)


async def until_status(instance: Instance, path: str, code: int) -> None:
    with trio.fail_after(20):
        while (await call(instance, "GET", path)).status_code != code:  # noqa: ASYNC110
            await trio.sleep(0.05)


def claimed(redis_server: RedisServer, job_id: str) -> bool:
    """Whether an instance has claimed the job (it has an owner)."""
    reply = _command(redis_server.port, "HGET", f"perfgate:{{job}}:{job_id}", "owner")
    return not reply.startswith(b"$-1")


def owner_pid(redis_server: RedisServer, job_id: str) -> int:
    """The pid of the instance that claimed the job (its consumer name is host:pid:random)."""
    reply = _command(redis_server.port, "HGET", f"perfgate:{{job}}:{job_id}", "owner")
    owner = reply.decode().split("\r\n")[1]
    return int(owner.split(":")[1])


async def test_a_job_submitted_on_a_is_visible_on_b(pair: tuple[Instance, Instance]) -> None:
    a, b = pair
    job = await submit(a, {"task": "say", "args": {"word": "hello"}})
    seen = (await call(b, "GET", f"/v1/jobs/{job['id']}")).json()
    assert seen["id"] == job["id"] and seen["task"] == "say"
    done = (await call(b, "GET", f"/v1/jobs/{job['id']}?wait=20")).json()
    assert done["state"] == "succeeded" and done["attempts"] == 1
    logs = (await call(b, "GET", f"/v1/jobs/{job['id']}/logs")).json()
    assert [line["line"] for line in logs["lines"]] == ["hello"]
    listed = (await call(b, "GET", "/v1/jobs?state=succeeded")).json()
    assert job["id"] in [j["id"] for j in listed["jobs"]]
    queued = (await call(b, "GET", "/v1/jobs?state=queued")).json()
    assert job["id"] not in [j["id"] for j in queued["jobs"]]


async def test_many_jobs_are_shared_and_each_runs_once(pair: tuple[Instance, Instance]) -> None:
    a, b = pair
    ids = [
        (await submit(a if i % 2 else b, {"task": "echo", "args": {"i": i}}))["id"]
        for i in range(20)
    ]
    for job_id in ids:
        done = (await call(a, "GET", f"/v1/jobs/{job_id}?wait=20")).json()
        assert done["state"] == "succeeded" and done["attempts"] == 1
    stats = [(await call(x, "GET", "/v1/stats")).json() for x in (a, b)]
    assert sum(s["pool"]["jobs"]["submitted"] for s in stats) == len(ids)  # each ran once
    assert sum(s["sources"]["queue"]["claimed"] for s in stats) == len(ids)
    pages: list[str] = []
    cursor = None
    while True:
        query = "/v1/jobs?limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = (await call(b, "GET", query)).json()
        pages += [j["id"] for j in page["jobs"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert sorted(pages) == sorted(ids) and len(pages) == len(ids)


async def test_idempotency_key_across_instances(pair: tuple[Instance, Instance]) -> None:
    a, b = pair
    body = {"task": "echo", "args": {"x": 1}, "idempotency_key": "order-7"}
    first = await submit(a, body)
    again = await call(b, "POST", "/v1/jobs", json=body)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    other = await call(b, "POST", "/v1/jobs", json={**body, "args": {"x": 2}})
    assert other.status_code == 409


async def test_kill_9_of_the_owner_another_instance_finishes_the_job(
    pair: tuple[Instance, Instance], redis_server: RedisServer
) -> None:
    a, b = pair
    job = await submit(a, {"task": "sleep", "args": {"seconds": 2.0, "steps": 4}})
    await until_state(a, job["id"], "running")
    pid = owner_pid(redis_server, job["id"])
    victim, survivor = (a, b) if pid == a["pid"] else (b, a)
    assert pid == victim["pid"]
    os.kill(pid, signal.SIGKILL)
    victim["proc"].wait(timeout=10)
    done = (await call(survivor, "GET", f"/v1/jobs/{job['id']}?wait=25")).json()
    assert done["state"] == "succeeded", done
    assert done["attempts"] == 2  # the killed attempt, then the re-run
    assert owner_pid(redis_server, job["id"]) == survivor["pid"]


async def test_cancel_on_b_stops_a_job_running_on_a(pair: tuple[Instance, Instance]) -> None:
    a, b = pair
    job = await submit(a, {"task": "sleep", "args": {"seconds": 30.0}})
    await until_state(a, job["id"], "running")
    response = await call(b, "DELETE", f"/v1/jobs/{job['id']}")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    # The owner learns of it at its next lease refresh and stops the run: its pool is free.
    with trio.fail_after(10):
        while True:
            stats = [(await call(x, "GET", "/v1/stats")).json() for x in (a, b)]
            if all(s["pool"]["running"] == 0 for s in stats):
                break
            await trio.sleep(0.1)
    assert (await call(a, "GET", f"/v1/jobs/{job['id']}")).json()["state"] == "cancelled"


async def test_redis_restart_mid_run_both_recover_and_the_job_completes(
    pair: tuple[Instance, Instance], redis_server: RedisServer
) -> None:
    a, b = pair
    job = await submit(a, {"task": "sleep", "args": {"seconds": 2.0, "steps": 4}})
    await until_state(b, job["id"], "running")
    redis_server.stop(save=True)
    for instance in (a, b):
        await until_status(instance, "/readyz", 503)
        refused = await call(instance, "POST", "/v1/jobs", json={"task": "echo", "args": {}})
        assert refused.status_code == 503 and "Retry-After" in refused.headers
    redis_server.start()
    for instance in (a, b):
        await until_status(instance, "/readyz", 200)
    for instance in (b, a):
        done = (await call(instance, "GET", f"/v1/jobs/{job['id']}?wait=25")).json()
        assert done["state"] == "succeeded", done
    after = await submit(b, {"task": "echo", "args": {"after": True}})
    finished = (await call(a, "GET", f"/v1/jobs/{after['id']}?wait=20")).json()
    assert finished["state"] == "succeeded" and finished["result"] == {"after": True}


async def test_redis_restart_with_queued_jobs_runs_each_once_afterwards(
    one_worker_pair: tuple[Instance, Instance], redis_server: RedisServer
) -> None:
    a, b = one_worker_pair
    # An instance holds up to twice its workers (one running, one waiting in its pool), and
    # either may claim any job: two busy jobs could both land on one instance and leave the
    # other idle to run the "queued" jobs at once. Four fill both instances whoever claims.
    busy = [
        await submit((a, b)[i % 2], {"task": "sleep", "args": {"seconds": 3.0, "steps": 1}})
        for i in range(2 * INSTANCE_CAPACITY)
    ]
    with trio.fail_after(20):
        while not all(claimed(redis_server, job["id"]) for job in busy):  # noqa: ASYNC110
            await trio.sleep(0.05)
    owners = {owner_pid(redis_server, job["id"]) for job in busy}
    assert owners == {a["proc"].pid, b["proc"].pid}
    queued = [await submit((a, b)[i % 2], {"task": "echo", "args": {"i": i}}) for i in range(4)]
    for job in queued:
        assert (await call(b, "GET", f"/v1/jobs/{job['id']}")).json()["state"] == "queued"
    redis_server.stop(save=True)
    for instance in (a, b):
        await until_status(instance, "/readyz", 503)
    redis_server.start()
    for instance in (a, b):
        await until_status(instance, "/readyz", 200)
    done = [(await call(a, "GET", f"/v1/jobs/{job['id']}?wait=25")).json() for job in busy + queued]
    assert [job["state"] for job in done] == ["succeeded"] * 8, done
    assert [job["result"] for job in done[4:]] == [{"i": i} for i in range(4)]
    # The queued jobs survived the restart in the queue and ran once each, not twice.
    assert [job["attempts"] for job in done[4:]] == [1, 1, 1, 1]


def test_the_shared_queue_is_bounded_by_max_queue(tmp_path: Path, redis_url: str) -> None:
    home = tmp_path / "bounded"
    home.mkdir()
    env = {
        "PERFGATE_POOL_MAX_QUEUE": "5",
        "PERFGATE_POOL_MAX_WORKERS": "1",
        "PERFGATE_POOL_DRAIN_TIMEOUT_S": "1",
    }
    proc, info = start_server(home, "--broker", redis_url, env=env)
    try:
        statuses = []
        for _ in range(12):
            body = {"task": "sleep", "args": {"seconds": 30}}
            response = httpx.post(info["http"] + "/v1/jobs", json=body, timeout=10)
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
                assert response.json()["code"] == "queue_full"
        assert statuses.count(202) == 5, statuses
        assert statuses[5:] == [429] * 7
    finally:
        code, err = stop_server(proc)
    assert code == 0, err[-2000:]
