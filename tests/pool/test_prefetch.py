"""Prefetch: a busy worker running a short job gets its next short job early, so that it never
idles through a round trip; that job is not an attempt until it starts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import trio
from pool_helpers import Events, fast_config, make_tasks, wait_until

from perfgate.pool import JobSpec, Pool, prefetch

SHORT_S = 0.5
"""What counts as short in these tests. The pool's own bound (50 ms) is measured from the
worker's start frame to its done frame, which a loaded machine stretches past 50 ms even for a
no-op job: then nothing is prefetched and these tests would test nothing, or fail. A no-op job
stays well under half a second however loaded the machine; the long jobs here last longer."""


@pytest.fixture(autouse=True)
def short_below_half_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefetch, "MAX_RUN_S", SHORT_S)


def one_worker(events: Events) -> Pool:
    return Pool(fast_config(min_workers=1, max_workers=1), make_tasks(), on_event=events)


async def learn_short(pool: Pool, *tasks: str) -> None:
    """Run each task once quickly, so that the pool knows it is short."""
    for task in tasks:
        args = {"seconds": 0.001, "steps": 1} if task == "sleep" else {}
        await pool.submit(JobSpec(id=f"learn-{task}", task=task, args=args)).wait()


async def test_prefetched_job_runs_on_the_same_worker(events: Events) -> None:
    async with one_worker(events) as pool:
        await learn_short(pool, "sleep", "pid")
        first = pool.submit(JobSpec(id="a", task="sleep", args={"seconds": 2.0}))
        await wait_until(lambda: first.state == "running")
        second = pool.submit(JobSpec(id="b", task="pid"))
        await wait_until(lambda: pool.stats().queue.total == 0)  # handed to the worker
        assert second.state == "queued"  # sent ahead, but not started: no attempt yet
        assert (await first.wait()).state == "succeeded"
        outcome = await second.wait()
        assert (outcome.state, outcome.attempts) == ("succeeded", 1)
        assert pool.stats().workers_started == 1


async def test_no_prefetch_behind_a_long_job() -> None:
    config = fast_config(min_workers=2, max_workers=2)
    async with Pool(config, make_tasks()) as pool:
        # Measured from start to end, a sleep is never shorter than it sleeps: long for sure.
        long_s = SHORT_S * 1.2
        await pool.submit(JobSpec(id="learn", task="sleep", args={"seconds": long_s})).wait()
        await learn_short(pool, "pid")
        long_jobs = [
            pool.submit(JobSpec(id=f"long{i}", task="sleep", args={"seconds": 2.0}))
            for i in range(2)
        ]
        short = pool.submit(JobSpec(id="short", task="pid"))
        await wait_until(lambda: all(job.state == "running" for job in long_jobs))
        assert pool.stats().queue.total == 1  # it waits for whichever worker frees first
        assert (await short.wait()).state == "succeeded"


async def test_cancel_a_prefetched_job_skips_it(events: Events, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    async with one_worker(events) as pool:
        await learn_short(pool, "sleep", "touch")
        first = pool.submit(JobSpec(id="a", task="sleep", args={"seconds": 2.0}))
        await wait_until(lambda: first.state == "running")
        second = pool.submit(JobSpec(id="b", task="touch", args={"path": str(marker)}))
        await wait_until(lambda: pool.stats().queue.total == 0)  # handed to the worker
        assert pool.cancel("b")
        outcome = await second.wait()
        assert (outcome.state, outcome.attempts) == ("cancelled", 0)
        assert events.states("b") == ["queued", "cancelled"]
        # The running job was not disturbed, and the skipped one never ran.
        assert (await first.wait()).state == "succeeded"
        after = await pool.submit(JobSpec(id="c", task="pid")).wait()
        assert after.state == "succeeded"
        assert not marker.exists()
        assert pool.stats().worker_restarts["cancelled"] == 0


async def test_a_crash_does_not_cost_the_prefetched_job_an_attempt(events: Events) -> None:
    async with one_worker(events) as pool:
        await learn_short(pool, "pid")
        crash = pool.submit(JobSpec(id="x", task="pid", args={"exit_code": 5}, timeout_s=60))
        victim = pool.submit(JobSpec(id="v", task="pid"))
        assert (await crash.wait()).error["exit_code"] == 5
        outcome = await victim.wait()
        assert (outcome.state, outcome.attempts) == ("succeeded", 1)
        assert events.states("v") == ["queued", "running", "succeeded"]


async def test_a_timeout_does_not_cost_the_prefetched_job_an_attempt(events: Events) -> None:
    async with one_worker(events) as pool:
        await learn_short(pool, "pid")
        slow = pool.submit(JobSpec(id="s", task="pid", args={"hang": True}, timeout_s=0.3))
        victim = pool.submit(JobSpec(id="v", task="pid"))
        await wait_until(lambda: pool.stats().queue.total == 0)  # both on the worker
        assert (await slow.wait()).error["kind"] == "timeout"
        outcome = await victim.wait()
        assert (outcome.state, outcome.attempts) == ("succeeded", 1)


async def test_a_prefetched_job_is_timed_from_its_own_start(events: Events) -> None:
    # The worker's watch carries the running job's deadline; it must move to the prefetched
    # job when that one starts, not be inherited nor count from when it was sent.
    async with one_worker(events) as pool:
        await learn_short(pool, "sleep")
        # Timed from when it was sent, b would need 2.1 s of its 1.5; from its own start it has
        # 1.4 s to spare.
        first = pool.submit(JobSpec(id="a", task="sleep", args={"seconds": 2.0}, timeout_s=10))
        await wait_until(lambda: first.state == "running")
        second = pool.submit(
            JobSpec(id="b", task="sleep", args={"seconds": 0.1, "steps": 1}, timeout_s=1.5)
        )
        await wait_until(lambda: pool.stats().queue.total == 0)  # sent ahead
        assert (await first.wait()).state == "succeeded"
        assert (await second.wait()).state == "succeeded"
        assert pool.stats().worker_restarts["timeout"] == 0


async def test_an_idle_worker_outlives_its_last_jobs_deadline(events: Events) -> None:
    async with one_worker(events) as pool:
        await learn_short(pool, "pid")
        # A deadline a loaded machine still meets for an instant job, then idle past it.
        first = await pool.submit(JobSpec(id="a", task="pid", timeout_s=1.0)).wait()
        await trio.sleep(1.5)  # past the deadline the job had
        second = await pool.submit(JobSpec(id="b", task="pid")).wait()
        assert first.result == second.result  # the same worker, not killed
        assert pool.stats().worker_restarts["timeout"] == 0


async def test_cancel_the_running_job_and_the_prefetched_one_still_runs(events: Events) -> None:
    async with one_worker(events) as pool:
        await learn_short(pool, "sleep", "pid")
        running = pool.submit(JobSpec(id="a", task="sleep", args={"seconds": 5}))
        await wait_until(lambda: running.state == "running")
        behind = pool.submit(JobSpec(id="b", task="pid"))
        await wait_until(lambda: pool.stats().queue.total == 0)  # sent ahead
        assert pool.cancel("a")
        assert (await running.wait()).state == "cancelled"
        outcome = await behind.wait()
        assert (outcome.state, outcome.attempts) == ("succeeded", 1)
        assert events.states("b") == ["queued", "running", "succeeded"]
        assert pool.stats().worker_restarts["cancelled"] == 1


async def test_a_burst_of_jobs_all_complete_in_order_of_their_own_events(events: Events) -> None:
    # Many frames per write and per read: every job still gets its own result and its
    # events in order.
    config = fast_config(min_workers=2, max_workers=2)
    async with Pool(config, make_tasks(), on_event=events) as pool:
        await learn_short(pool, "echo")
        handles = [
            pool.submit(JobSpec(id=f"j{i}", task="echo", args={"value": i})) for i in range(300)
        ]
        outcomes = [await handle.wait() for handle in handles]
        assert [outcome.result for outcome in outcomes] == [{"value": i} for i in range(300)]
        for i in range(300):
            assert events.states(f"j{i}") == ["queued", "running", "succeeded"]
        assert pool.stats().reuse_rate > 0.9


# -- the pure rule (perfgate.pool.prefetch) ----------------------------------------------


def test_short_means_known_and_at_most_the_limit() -> None:
    assert prefetch.is_short(0.001)
    assert prefetch.is_short(prefetch.MAX_RUN_S)
    assert not prefetch.is_short(prefetch.MAX_RUN_S * 1.01)
    assert not prefetch.is_short(None)


def test_one_short_job_ahead_is_fine_a_long_or_unknown_one_is_not() -> None:
    assert not prefetch.may_queue_behind([])  # an idle worker is picked as idle, not here
    assert prefetch.may_queue_behind([prefetch.MAX_RUN_S])
    assert not prefetch.may_queue_behind([1.0])
    assert not prefetch.may_queue_behind([math.inf])


def test_several_ahead_only_while_their_sum_is_small_and_depth_bounded() -> None:
    tiny = prefetch.MAX_AHEAD_S / 20
    assert prefetch.may_queue_behind([tiny, tiny])
    assert not prefetch.may_queue_behind([prefetch.MAX_RUN_S, tiny])  # 50 ms + a queue: no
    assert not prefetch.may_queue_behind([tiny, math.inf])
    assert prefetch.may_queue_behind([tiny] * (prefetch.MAX_DEPTH - 1))
    assert not prefetch.may_queue_behind([tiny] * prefetch.MAX_DEPTH)
    half = prefetch.MAX_AHEAD_S / 2
    assert prefetch.may_queue_behind([half, half])
    assert not prefetch.may_queue_behind([half, half, half])
