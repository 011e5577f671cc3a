"""What follows an attempt (perfgate.pool.attempts): its outcome, retries with back-off up to
max_retries then dead, permanent errors, timeouts, cancelling a back-off."""

from __future__ import annotations

from pool_helpers import Events, fast_config, make_tasks, run, wait_until

from perfgate.pool import JobSpec, Pool


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


async def test_timeout_is_retried(pool: Pool, events: Events) -> None:
    outcome = await run(pool, "t", "hang", timeout_s=0.2, max_retries=1)
    assert (outcome.state, outcome.attempts) == ("dead", 2)
    assert outcome.error["kind"] == "timeout"


async def test_cancel_during_backoff(events: Events) -> None:
    config = fast_config(retry_backoff_s=60, retry_backoff_max_s=60)
    async with Pool(config, make_tasks(), on_event=events) as pool:
        handle = pool.submit(JobSpec(id="b", task="boom", max_retries=5))
        await wait_until(lambda: events.states("b")[-1:] == ["retrying"])
        assert pool.cancel("b")
        outcome = await handle.wait()
        assert (outcome.state, outcome.attempts) == ("cancelled", 1)
