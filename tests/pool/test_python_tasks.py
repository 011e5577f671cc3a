"""Python tasks in warm workers: results, events, exceptions, crashes, timeouts, recycling."""

from __future__ import annotations

import os
import signal

import pytest
from pool_helpers import Events, fast_config, gone, make_tasks, wait_until

from perfgate.pool import JobSpec, Pool


async def run(pool: Pool, job_id: str, task: str, **kwargs: object):  # type: ignore[no-untyped-def]
    args = kwargs.pop("args", {})
    return await pool.submit(JobSpec(id=job_id, task=task, args=args, **kwargs)).wait()  # type: ignore[arg-type]


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


async def test_workers_are_warm_and_reused(pool: Pool) -> None:
    pids = {(await run(pool, f"p{i}", "pid")).result for i in range(5)}
    assert len(pids) == 1
    stats = pool.stats()
    assert stats.workers_started == 1
    assert stats.reuse_rate == pytest.approx(0.8)


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


async def test_exception_fails_the_attempt_not_the_worker(pool: Pool, events: Events) -> None:
    before = (await run(pool, "p1", "pid")).result
    outcome = await run(pool, "b", "boom", args={"message": "kaput"})
    assert outcome.state == "failed"
    assert outcome.error == {
        "type": "RuntimeError",
        "message": "kaput",
        "kind": "exception",
        "permanent": False,
    }
    logs = [e["line"] for e in events.of("b", "log")]
    assert logs[0] == "Traceback (most recent call last):"
    assert logs[-1] == "RuntimeError: kaput"
    assert events.of("b", "error") == [{"event": "error", "error": outcome.error}]
    assert events.states("b") == ["queued", "running", "failed"]
    assert (await run(pool, "p2", "pid")).result == before
    assert pool.stats().worker_restarts["crash"] == 0


async def test_unserialisable_result_and_missing_target_fail_permanently(pool: Pool) -> None:
    outcome = await run(pool, "n", "not_json", max_retries=3)
    assert (outcome.state, outcome.attempts) == ("failed", 1)
    assert outcome.error["type"] == "TypeError"
    outcome = await run(pool, "m", "missing", max_retries=3)
    assert (outcome.state, outcome.attempts) == ("failed", 1)
    assert outcome.error["type"] == "AttributeError"


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


async def test_crash_then_retry_follows_the_policy(pool: Pool, events: Events, tmp_path) -> None:  # type: ignore[no-untyped-def]
    counter = tmp_path / "count"
    outcome = await run(
        pool, "f", "flaky", args={"counter_file": str(counter), "failures": 2}, max_retries=3
    )
    assert outcome.state == "succeeded"
    assert outcome.result == 3
    assert outcome.attempts == 3
    assert events.states("f") == [
        "queued",
        "running",
        "retrying",
        "running",
        "retrying",
        "running",
        "succeeded",
    ]
    retrying = [e for e in events.of("f", "state") if e["state"] == "retrying"]
    assert retrying[0]["error"]["kind"] == "crash"
    assert retrying[0]["error"]["exit_code"] == 9
    assert retrying[1]["error"]["kind"] == "exception"
    assert all(0 <= e["retry_in_s"] <= 0.05 for e in retrying)
    assert pool.stats().jobs.retried == 2


async def test_dead_after_the_last_retry(pool: Pool, events: Events) -> None:
    outcome = await run(pool, "d", "boom", max_retries=2)
    assert outcome.state == "dead"
    assert outcome.attempts == 3
    assert events.states("d") == [
        "queued",
        "running",
        "retrying",
        "running",
        "retrying",
        "running",
        "dead",
    ]


async def test_permanent_error_is_not_retried(pool: Pool) -> None:
    outcome = await run(pool, "p", "boom_permanent", max_retries=5)
    assert (outcome.state, outcome.attempts) == ("failed", 1)
    assert outcome.error["type"] == "PermanentError"
    assert outcome.error["permanent"] is True


async def test_resumed_job_counts_attempts_already_used(pool: Pool) -> None:
    outcome = await run(pool, "r", "boom", max_retries=3, attempts=2)
    assert (outcome.state, outcome.attempts) == ("dead", 4)


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


async def test_timeout_is_retried(pool: Pool, events: Events) -> None:
    outcome = await run(pool, "t", "hang", timeout_s=0.2, max_retries=1)
    assert (outcome.state, outcome.attempts) == ("dead", 2)
    assert outcome.error["kind"] == "timeout"


async def test_recycled_after_max_jobs_per_worker(events: Events) -> None:
    # One worker at a time: with two, a busy machine may start the second (growth) while the
    # first is still answering, and a job lands on it; the count, not the timing, is under test.
    config = fast_config(max_jobs_per_worker=2, max_workers=1)
    async with Pool(config, make_tasks(), on_event=events) as pool:
        pids = [(await run(pool, f"p{i}", "pid")).result for i in range(5)]
        assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
        assert pool.stats().worker_restarts["max_jobs"] == 2


async def test_recycled_when_rss_passes_the_limit(events: Events) -> None:
    async with Pool(fast_config(max_worker_rss_mb=200), make_tasks(), on_event=events) as pool:
        first = (await run(pool, "g1", "grow", args={"mb": 1})).result
        assert (await run(pool, "g2", "grow", args={"mb": 1})).result == first
        # Between jobs, never mid-job: the job that grew the worker past the limit succeeds.
        assert (await run(pool, "g3", "grow", args={"mb": 250})).state == "succeeded"
        assert (await run(pool, "p", "pid")).result != first
        assert pool.stats().worker_restarts["rss"] == 1


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


async def test_cancel_during_backoff(events: Events) -> None:
    config = fast_config(retry_backoff_s=60, retry_backoff_max_s=60)
    async with Pool(config, make_tasks(), on_event=events) as pool:
        handle = pool.submit(JobSpec(id="b", task="boom", max_retries=5))
        await wait_until(lambda: events.states("b")[-1:] == ["retrying"])
        assert pool.cancel("b")
        outcome = await handle.wait()
        assert (outcome.state, outcome.attempts) == ("cancelled", 1)


async def test_pool_grows_under_load_and_shrinks_when_idle(events: Events) -> None:
    config = fast_config(min_workers=1, max_workers=3, idle_timeout_s=0.3)
    async with Pool(config, make_tasks(), on_event=events) as pool:
        handles = [
            pool.submit(JobSpec(id=f"s{i}", task="sleep", args={"seconds": 0.3})) for i in range(6)
        ]
        for handle in handles:
            assert (await handle.wait()).state == "succeeded"
        assert pool.stats().workers_started == 3
        await wait_until(lambda: pool.stats().workers.total == 1)
        assert pool.stats().workers_retired_idle == 2
        assert (await run(pool, "e", "echo")).state == "succeeded"


async def test_an_idle_worker_that_dies_is_replaced_at_once(pool: Pool) -> None:
    before = (await run(pool, "p1", "pid")).result
    os.kill(before, signal.SIGKILL)
    await wait_until(
        lambda: pool.stats().worker_restarts["crash"] == 1 and pool.stats().workers.idle == 1
    )
    assert pool.stats().workers_started == 2
    outcome = await run(pool, "p2", "pid")
    assert (outcome.state, outcome.attempts) == ("succeeded", 1)
    assert outcome.result != before
