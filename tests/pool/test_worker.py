"""One warm worker process (perfgate.pool.worker): results, state, progress and log events,
the built-in tasks, and a worker that crashes, times out or is cancelled is replaced."""

from __future__ import annotations

import pytest
from pool_helpers import Events, gone, run, wait_until

from perfgate.pool import JobSpec, Pool


async def test_echo_result_and_state_events(pool: Pool, events: Events) -> None:
    outcome = await run(pool, "j1", "echo", args={"hello": "world"})
    assert outcome.state == "succeeded"
    assert outcome.result == {"hello": "world"}
    assert outcome.attempts == 1
    assert outcome.started_at is not None and outcome.finished_at >= outcome.started_at
    assert events.by_job["j1"] == [
        {"event": "state", "state": "queued", "attempt": 0},
        {"event": "state", "state": "running", "attempt": 1},
        {"event": "result", "result": {"hello": "world"}},
        {"event": "state", "state": "succeeded", "attempt": 1},
    ]


async def test_progress_and_logs_stream_while_running(pool: Pool, events: Events) -> None:
    outcome = await run(pool, "c", "chatty", args={"lines": 2})
    assert outcome.result == "ok"
    assert events.of("c", "log") == [
        {"event": "log", "line": "line 0", "stream": "task"},
        {"event": "log", "line": "line 1", "stream": "task"},
    ]
    assert events.of("c", "progress") == [{"event": "progress", "fraction": 0.5, "message": "half"}]
    # The worker's stray print() went to stderr: the next job on it still works.
    assert (await run(pool, "e", "echo")).state == "succeeded"


async def test_builtin_sleep_reports_progress(pool: Pool, events: Events) -> None:
    outcome = await run(pool, "s", "sleep", args={"seconds": 0.05, "steps": 5})
    assert outcome.result == {"slept_s": 0.05}
    assert [e["fraction"] for e in events.of("s", "progress")] == [0.2, 0.4, 0.6, 0.8, 1.0]


async def test_sha256_builtin(pool: Pool) -> None:
    outcome = await run(pool, "h", "sha256", args={"data": "abc", "rounds": 1})
    assert (
        outcome.result["hex"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


@pytest.mark.parametrize(
    ("task", "args", "expected"),
    [
        ("segfault", {}, {"signal": "SIGSEGV"}),
        ("hard_exit", {"code": 3}, {"exit_code": 3}),
        ("self_kill", {}, {"signal": "SIGKILL"}),
    ],
)
async def test_crash_is_detected_and_the_worker_replaced(
    pool: Pool, events: Events, task: str, args: dict[str, object], expected: dict[str, object]
) -> None:
    before = (await run(pool, "p1", "pid")).result
    # A long timeout: a crash must be seen at once, from the pipe, not at the deadline.
    outcome = await run(pool, "x", task, args=args, timeout_s=600)
    assert outcome.state == "failed"
    assert outcome.error["type"] == "WorkerCrashed"
    assert outcome.error["kind"] == "crash"
    for key, value in expected.items():
        assert outcome.error[key] == value
    assert gone(before)
    after = (await run(pool, "p2", "pid")).result
    assert after != before
    stats = pool.stats()
    assert stats.worker_restarts["crash"] == 1
    assert stats.jobs.crashed == 1


async def test_timeout_kills_and_replaces_the_worker(pool: Pool, events: Events, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "pids"
    # The timeout must find the grandchild started (a Python start, slow on a loaded machine);
    # with a sub-second timeout it could fire first, and no grandchild would be left to sweep.
    spec = JobSpec(id="t", task="spawn_and_hang", args={"pid_file": str(pid_file)}, timeout_s=3)
    handle = pool.submit(spec)
    await wait_until(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2)
    worker_pid, grandchild_pid = map(int, pid_file.read_text().split())
    outcome = await handle.wait()
    assert outcome.state == "failed"
    assert outcome.error["type"] == "Timeout"
    assert "timed out" in outcome.error["message"]
    assert gone(worker_pid)
    # The whole process group went (SIGKILL completes asynchronously for the grandchild).
    await wait_until(lambda: gone(grandchild_pid), timeout_s=2)
    stats = pool.stats()
    assert stats.worker_restarts["timeout"] == 1
    assert stats.jobs.timed_out == 1
    assert (await run(pool, "e", "echo")).state == "succeeded"


async def test_cancel_a_running_job_kills_its_worker(pool: Pool, events: Events, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "pid"
    handle = pool.submit(JobSpec(id="h", task="hang", args={"pid_file": str(pid_file)}))
    await wait_until(lambda: pid_file.exists() and bool(pid_file.read_text()))
    assert pool.cancel("h") is True
    assert pool.cancel("h") is True  # idempotent while it is being stopped
    outcome = await handle.wait()
    assert outcome.state == "cancelled"
    assert gone(int(pid_file.read_text()))
    assert pool.cancel("h") is False
    assert events.states("h") == ["queued", "running", "cancelled"]
    assert pool.stats().worker_restarts["cancelled"] == 1
