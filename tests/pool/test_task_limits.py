"""Per-task limits: ``max_concurrency`` and ``rate_per_s``. Jobs over a limit wait in the
queue (never fail), keep their priority order among themselves, and never hold back another
task's jobs queued behind them."""

from __future__ import annotations

import pytest
import trio
from pool_helpers import fast_config, make_tasks, wait_until

from perfgate.config import TaskConfig, load_config
from perfgate.errors import ConfigError
from perfgate.jobs.lifecycle import PoolEvent, StateEvent
from perfgate.pool import JobSpec, Pool
from perfgate.pool.queue import PriorityQueue
from perfgate.pool.task_limits import TaskLimits

# -- pure -----------------------------------------------------------------------------------


def test_a_blocked_group_is_skipped_and_the_rest_keeps_its_order() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=10, aging_s=100)
    queue.push("s1", "s1", "high", 0.0, group="slow")
    queue.push("s2", "s2", "high", 0.1, group="slow")
    queue.push("e1", "e1", "normal", 0.2, group="echo")
    queue.push("e2", "e2", "high", 0.3, group="echo")
    assert queue.peek(1.0) == "s1"
    assert queue.peek(1.0, {"slow"}) == "e2"  # the best job of the others, by priority
    assert queue.pop(1.0, {"slow"}) == "e2" and queue.pop(1.0, {"slow"}) == "e1"
    assert queue.pop(1.0, {"slow"}) is None and len(queue) == 2
    assert queue.waiting({"slow", "echo"}) == {"slow": 2}
    assert queue.pop(1.0) == "s1" and queue.pop(1.0) == "s2"


def test_with_nothing_blocked_the_order_is_one_fifo_per_priority() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=10, aging_s=100)
    for n, group in enumerate(["a", "b", "a", "b", "c"]):
        queue.push(f"{group}{n}", f"{group}{n}", "normal", 0.0, group=group)  # one instant
    assert [queue.pop(1.0) for _ in range(5)] == ["a0", "b1", "a2", "b3", "c4"]


def test_task_limits_cap_and_rate() -> None:
    tasks = {
        "capped": TaskConfig(name="capped", target="m:f", max_concurrency=2),
        "rated": TaskConfig(name="rated", target="m:f", rate_per_s=2.0),
        "free": TaskConfig(name="free", target="m:f"),
    }
    limits = TaskLimits(tasks)
    assert limits.limited == {"capped", "rated"} and limits.blocked(0.0) == frozenset()
    assert limits.acquire("free", 0.0) is False
    assert limits.acquire("capped", 0.0) and limits.acquire("capped", 0.0)
    assert limits.blocked(0.0) == {"capped"}
    limits.release("capped")
    assert limits.blocked(0.0) == frozenset()
    limits.acquire("rated", 0.0)
    limits.acquire("rated", 0.0)  # a burst of one second's worth: 2
    assert limits.blocked(0.0) == {"rated"}
    assert limits.next_token_in(0.0, frozenset({"rated"})) == pytest.approx(0.5)
    assert limits.blocked(0.5) == frozenset()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max_concurrency", 0, "max_concurrency: must be > 0"),
        ("rate_per_s", 0, "rate_per_s: must be > 0"),
        ("rate_per_s", -1.5, "rate_per_s: must be > 0"),
        ("max_concurrency", "2", "max_concurrency: expected an integer"),
    ],
)
def test_a_limit_of_zero_is_a_config_error_naming_it(key: str, value: object, message: str) -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "perfgate.toml"
        text = f'[tasks.t]\ntarget = "m:f"\n{key} = {value!r}\n'.replace("'", '"')
        path.write_text(text)
        with pytest.raises(ConfigError) as refused:
            load_config(path, env={})
    assert refused.value.message.startswith("[tasks.t]") and message in refused.value.message


# -- the pool, with real workers ------------------------------------------------------------


def limited_tasks(**limits: object) -> dict[str, TaskConfig]:
    tasks = make_tasks()
    tasks["slow"] = TaskConfig(name="slow", target="perfgate.tasks:sleep", **limits)  # type: ignore[arg-type]
    return tasks


async def test_max_concurrency_holds_its_jobs_and_lets_others_pass() -> None:
    running: set[str] = set()
    peak = 0
    order: list[str] = []

    def record(job_id: str, event: PoolEvent) -> None:
        nonlocal peak
        if not isinstance(event, StateEvent):
            return
        if event.state == "running":
            order.append(job_id)
            if job_id.startswith("slow"):
                running.add(job_id)
                peak = max(peak, len(running))
        elif event.state in ("succeeded", "failed", "dead", "cancelled"):
            running.discard(job_id)

    config = fast_config(min_workers=3, max_workers=3)
    async with Pool(config, limited_tasks(max_concurrency=1), on_event=record) as pool:
        slow = [
            pool.submit(JobSpec(id=f"slow{n}", task="slow", args={"seconds": 0.3}, priority="high"))
            for n in range(3)
        ]
        # Queued behind three high-priority jobs of the capped task: they run at once anyway.
        fast = [pool.submit(JobSpec(id=f"echo{n}", task="echo", priority="low")) for n in range(3)]
        await wait_until(lambda: pool.stats().limited["slow"].held)
        stats = pool.stats().limited["slow"]
        assert stats.waiting == 2 and stats.running == 1 and stats.max_concurrency == 1
        for handle in fast:
            await handle.wait()
        assert {h.outcome.state for h in slow if h.outcome} <= {"succeeded"}
        assert sum(1 for h in slow if h.outcome is None) >= 1, "echo jobs did not wait for them"
        for handle in slow:
            assert (await handle.wait()).state == "succeeded"
    assert peak == 1
    slow_order = [job for job in order if job.startswith("slow")]
    assert slow_order == ["slow0", "slow1", "slow2"]  # FIFO among themselves
    assert pool.stats().limited["slow"].running == 0


async def test_rate_per_s_spaces_the_starts() -> None:
    starts: dict[str, float] = {}

    def record(job_id: str, event: PoolEvent) -> None:
        if isinstance(event, StateEvent) and event.state == "running":
            starts[job_id] = trio.current_time()

    config = fast_config(min_workers=2, max_workers=2)
    tasks = limited_tasks(rate_per_s=4.0)
    async with Pool(config, tasks, on_event=record) as pool:
        handles = [
            pool.submit(JobSpec(id=f"r{n}", task="slow", args={"seconds": 0})) for n in range(8)
        ]
        for handle in handles:
            assert (await handle.wait()).state == "succeeded"
    times = sorted(starts.values())
    # A burst of 4 (one second's worth), then one every 0.25 s: the 8th starts >= 1 s after
    # the first (a floor the token bucket guarantees, not a speed).
    assert times[-1] - times[0] >= 1.0 - 0.05
