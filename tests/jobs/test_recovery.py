"""An accepted job is never lost: kill -9 the server mid-run, restart, every job finishes."""

from __future__ import annotations

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
