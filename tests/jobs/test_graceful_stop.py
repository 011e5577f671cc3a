"""A graceful stop leaves every job that finished, finished: SIGTERM a real server while jobs
run, restart it on the same data, and no job runs again. Memory (SQLite) and Redis modes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from perfgate.bench.server import perfgate_argv
from tests.helpers import start_server, stop_server

JOBS = 4
ROUNDS = 3


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def ready_files(home: Path) -> list[Path]:
    return sorted(home.glob("ready-*.json"))


def submit_sleepers(api: str, prefix: str) -> list[str]:
    ids = []
    for i in range(JOBS):
        body = {
            "task": "sleep",
            "args": {"seconds": 1.5, "steps": 3},
            "idempotency_key": f"{prefix}-{i}",
        }
        response = httpx.post(api + "/v1/jobs", json=body, timeout=10)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def until_running(api: str, ids: list[str]) -> None:
    """Every job has started (so the stop lands while all of them run)."""
    deadline = time.monotonic() + 20
    for job_id in ids:
        while httpx.get(f"{api}/v1/jobs/{job_id}", timeout=10).json()["state"] == "queued":
            assert time.monotonic() < deadline, job_id
            time.sleep(0.02)


def sigterm_and_wait(proc: subprocess.Popen[bytes], home: Path) -> str:
    children = descendants(proc.pid)
    assert children, "the pool's workers are running"
    code, err = stop_server(proc, timeout_s=40)
    assert code == 0, err
    # Nothing left behind: every worker is gone and the ready file removed.
    _, alive = psutil.wait_procs(children, timeout=2)
    assert alive == []
    assert ready_files(home) == []
    return err


def stop_then_restart_rounds(home: Path, *args: str, env: dict[str, str]) -> None:
    ids: list[str] = []
    for round_ in range(ROUNDS):
        proc, ready = start_server(home, *args, env=env)
        if round_:
            # Whatever the previous round left must already be final: nothing is re-run.
            for job in (httpx.get(f"{ready['http']}/v1/jobs/{j}", timeout=10).json() for j in ids):
                assert (job["state"], job["attempts"]) == ("succeeded", 1), job
        submitted = submit_sleepers(ready["http"], f"r{round_}")
        until_running(ready["http"], submitted)
        ids += submitted
        err = sigterm_and_wait(proc, home)
        assert "recovered jobs" not in err, err

    proc, ready = start_server(home, *args, env=env)
    try:
        jobs: list[dict[str, Any]] = [
            httpx.get(f"{ready['http']}/v1/jobs/{j}", timeout=10).json() for j in ids
        ]
    finally:
        code, err = stop_server(proc)
    assert code == 0, err
    assert [(job["state"], job["attempts"]) for job in jobs] == [("succeeded", 1)] * len(ids)
    assert "recovered jobs" not in err and "reclaimed job" not in err


# drain_timeout_s is well above the jobs' 1.5 s: every job finishes inside the drain.
ENV = {"PERFGATE_POOL_MAX_WORKERS": str(JOBS), "PERFGATE_POOL_DRAIN_TIMEOUT_S": "30"}


def test_sigterm_then_restart_runs_no_finished_job_again(tmp_path: Path) -> None:
    stop_then_restart_rounds(tmp_path, env=ENV)


def test_sigterm_then_restart_runs_no_finished_job_again_with_redis(
    tmp_path: Path, redis_url: str
) -> None:
    env = {**ENV, "PERFGATE_SERVER_JOB_LEASE_S": "2"}
    stop_then_restart_rounds(tmp_path, "--broker", redis_url, env=env)


@pytest.mark.parametrize("deadline_s", ["0.5"])
def test_a_job_cut_off_by_the_drain_deadline_runs_again_after_restart(
    tmp_path: Path, deadline_s: str
) -> None:
    """A job still running when the drain deadline passes was not finished: the next start
    recovers it (at-least-once), and it ends succeeded."""
    env = {"PERFGATE_POOL_MAX_WORKERS": "2", "PERFGATE_POOL_DRAIN_TIMEOUT_S": deadline_s}
    proc, ready = start_server(tmp_path, env=env)
    body = {"task": "sleep", "args": {"seconds": 3, "steps": 3}}
    job_id = httpx.post(ready["http"] + "/v1/jobs", json=body, timeout=10).json()["id"]
    until_running(ready["http"], [job_id])
    err = sigterm_and_wait(proc, tmp_path)
    assert "drain deadline passed" in err

    again, ready = start_server(tmp_path, env=env)
    try:
        job = httpx.get(f"{ready['http']}/v1/jobs/{job_id}?wait=20", timeout=30).json()
    finally:
        code, err = stop_server(again)
    assert code == 0, err
    assert (job["state"], job["attempts"]) == ("succeeded", 2), job
    assert "recovered jobs" in err


def test_the_ready_file_outlives_kill_9_and_the_next_start_removes_it(tmp_path: Path) -> None:
    """A killed process cannot remove its ready file: it stays, naming a dead pid. The next
    start on that file removes it before anything else (so nobody reads the dead server's
    URLs while it starts), and writes its own once ready."""
    proc, ready = start_server(tmp_path)
    (stale,) = ready_files(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    stop_server(proc)
    assert stale.exists()
    assert not psutil.pid_exists(ready["pid"])

    # A broker that is down keeps the next start waiting, not ready: the stale file is gone.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_broker = f"redis://127.0.0.1:{unused.getsockname()[1]}/0"
    waiting = subprocess.Popen(
        [*perfgate_argv(str(tmp_path / "data"), str(stale)), "--broker", dead_broker],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while stale.exists():
            assert waiting.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(20) == 0

    again, fresh = start_server(tmp_path, ready_file=stale)
    try:
        assert fresh["pid"] == again.pid
        assert httpx.get(fresh["http"] + "/readyz", timeout=10).status_code == 200
    finally:
        code, err = stop_server(again)
    assert code == 0, err
    assert not stale.exists()
