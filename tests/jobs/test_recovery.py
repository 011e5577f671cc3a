"""An accepted job is never lost: kill -9 the server mid-run, restart, every job finishes."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import httpx
import psutil

from tests.helpers import start_server, stop_server


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_kill_9_mid_run_then_restart_finishes_every_job(tmp_path: Path) -> None:
    proc, ready = start_server(tmp_path, env={"PERFGATE_POOL_MAX_WORKERS": "2"})
    api = ready["http"]
    ids = []
    for i in range(6):
        body = {"task": "sleep", "args": {"seconds": 1.5, "steps": 3}, "idempotency_key": f"k{i}"}
        response = httpx.post(api + "/v1/jobs", json=body, timeout=10)
        assert response.status_code == 202
        ids.append(response.json()["id"])
    # Wait until two are running, then kill the server without a chance to clean up.
    deadline = time.monotonic() + 20
    while httpx.get(api + "/v1/jobs?state=running", timeout=10).json()["jobs"] == []:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    children = descendants(proc.pid)
    assert children, "warm workers are running"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    # Workers watch their lifeline (stdin EOF) and exit with the server: within 2 s.
    _, alive = psutil.wait_procs(children, timeout=2)
    assert alive == []

    again, ready = start_server(tmp_path)
    try:
        api = ready["http"]
        for job_id in ids:
            job = httpx.get(f"{api}/v1/jobs/{job_id}?wait=30", timeout=40).json()
            assert job["state"] == "succeeded", job
        attempts = [httpx.get(f"{api}/v1/jobs/{j}", timeout=10).json()["attempts"] for j in ids]
        assert max(attempts) >= 2, "the jobs that were running ran again (at-least-once)"
        # The same idempotency key after the restart still names the same job.
        body = {"task": "sleep", "args": {"seconds": 1.5, "steps": 3}, "idempotency_key": "k0"}
        assert httpx.post(api + "/v1/jobs", json=body, timeout=10).json()["id"] == ids[0]
    finally:
        code, err = stop_server(again)
    assert code == 0, err
    assert "recovered jobs" in err


# A command job that marks its attempt and, while the ``hang`` file exists, hangs (sh and its
# sleep, both in the shim's process group); an attempt that finds its mark succeeds at once.
COMMAND_TASK = """
[tasks.stall]
command = ["sh", "-c", "test -e \\"$1\\" && exit 0; touch \\"$1\\"; test -e \\"$2\\" && sleep 600; true", "sh", "{mark}", "{hang}"]
timeout_s = 60
"""


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a group of zombies only, on some kernels
        return False
    return True


def test_kill_9_takes_command_process_groups_and_restart_recovers_the_jobs(
    tmp_path: Path,
) -> None:
    (tmp_path / "perfgate.toml").write_text(COMMAND_TASK)
    env = {"PERFGATE_POOL_MAX_WORKERS": "2", "PERFGATE_POOL_MIN_WORKERS": "1"}
    proc, ready = start_server(tmp_path, env=env)
    api = ready["http"]
    marks = [tmp_path / f"mark-{i}" for i in range(3)]
    hang = tmp_path / "hang"
    hang.touch()
    ids = []
    for mark in marks:  # two run (max_workers commands at a time), the third waits its turn
        body = {"task": "stall", "args": {"mark": str(mark), "hang": str(hang)}}
        response = httpx.post(api + "/v1/jobs", json=body, timeout=10)
        assert response.status_code == 202
        ids.append(response.json()["id"])
    deadline = time.monotonic() + 20
    sleeps: list[psutil.Process] = []
    while len(sleeps) < 2:
        assert time.monotonic() < deadline, "two commands never started"
        time.sleep(0.05)
        sleeps = [p for p in descendants(proc.pid) if p.name() == "sleep"]
    groups = {os.getpgid(p.pid) for p in sleeps}
    assert len(groups) == 2 and proc.pid not in groups  # each command leads its own group
    children = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    try:
        # Every child (workers, shims, sh, sleep) is gone within 2 s: no orphaned command.
        _, alive = psutil.wait_procs(children, timeout=2)
        assert alive == []
        assert not any(group_alive(pgid) for pgid in groups)
    finally:  # a failure here must not leave the orphans it found behind
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
    assert [mark.exists() for mark in marks] == [True, True, False]
    hang.unlink()

    again, ready = start_server(tmp_path, env=env)
    try:
        api = ready["http"]
        jobs = [httpx.get(f"{api}/v1/jobs/{j}?wait=30", timeout=40).json() for j in ids]
        assert [job["state"] for job in jobs] == ["succeeded"] * 3, jobs
        # The two that were running ran again; the queued one ran once, after the restart.
        assert [job["attempts"] for job in jobs] == [2, 2, 1]
    finally:
        code, err = stop_server(again)
    assert code == 0, err
    assert "recovered jobs" in err
