"""Benchmark: perfgate's pool against ProcessPoolExecutor and trio_parallel, in one run.

    .venv/bin/python bench/studies/pool_bench.py [--workers 2] [--latency-jobs 1000]
                                         [--throughput-jobs 3000] [--rounds 5]

For each task (a no-op and 1 ms of CPU) it measures, on warm workers:
- round trip: one job at a time, submit -> result, p50 and p99 (ms);
- throughput: N jobs submitted at once, jobs per second until the last result. Each side is
  driven the way its users drive it: the pool's completions are counted in ``on_event`` (as the
  job service does), the executor's futures are read in order, trio_parallel gets one task per
  job under a CapacityLimiter. Same worker count, same job count, same warm-up for all three;
  the pool does not recycle workers unless --max-jobs-per-worker says so.
Implementations run interleaved round by round (A B C, A B C, ...) so that machine noise hits
them alike; each figure is the median over rounds. Ratios are against perfgate's pool.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
import trio_parallel

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_tasks

from perfgate.config import PoolConfig, TaskConfig
from perfgate.jobs.lifecycle import FINAL_STATES, PoolEvent, StateEvent
from perfgate.pool import JobSpec, Pool

TASKS = {"noop": bench_tasks.noop, "cpu_1ms": bench_tasks.cpu_1ms}
MAX_JOBS_PER_WORKER = 10**6  # set from --max-jobs-per-worker


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class Result:
    def __init__(self) -> None:
        self.p50_ms: list[float] = []
        self.p99_ms: list[float] = []
        self.rate: list[float] = []

    def add_latency(self, samples_s: list[float]) -> None:
        self.p50_ms.append(1000 * percentile(samples_s, 0.50))
        self.p99_ms.append(1000 * percentile(samples_s, 0.99))


# -- perfgate pool ---------------------------------------------------------------------------


async def pool_round(
    workers: int, task: str, n_latency: int, n_rate: int
) -> tuple[list[float], float]:
    config = PoolConfig(
        min_workers=workers,
        max_workers=workers,
        max_queue=n_rate + 10,
        max_jobs_per_worker=MAX_JOBS_PER_WORKER,
    )
    tasks = {task: TaskConfig(name=task, target=f"bench_tasks:{task}")}
    counter = 0
    finished: dict[str, int] = {}
    all_finished = trio.Event()
    expected = 0

    def on_event(job_id: str, event: PoolEvent) -> None:
        # How the server consumes the pool (its on_event is the job service's events channel;
        # nothing awaits a handle), so the throughput phase counts final states here instead
        # of running 3000 JobHandle.wait() calls that no real caller makes.
        if isinstance(event, StateEvent) and event.state in FINAL_STATES:
            finished[event.state] = finished.get(event.state, 0) + 1
            if sum(finished.values()) == expected:
                all_finished.set()

    def spec() -> JobSpec:
        nonlocal counter
        counter += 1
        return JobSpec(id=str(counter), task=task)

    async with Pool(config, tasks, on_event=on_event) as pool:
        for _ in range(50):  # warm: targets imported, every worker used
            await pool.submit(spec()).wait()
        samples = []
        for _ in range(n_latency):
            start = time.perf_counter()
            await pool.submit(spec()).wait()
            samples.append(time.perf_counter() - start)
        finished.clear()
        expected = n_rate
        start = time.perf_counter()
        for _ in range(n_rate):
            pool.submit(spec())
        await all_finished.wait()
        rate = n_rate / (time.perf_counter() - start)
        assert finished == {"succeeded": n_rate}, finished
    return samples, rate


# -- ProcessPoolExecutor -----------------------------------------------------------------------


def ppe_round(workers: int, task: str, n_latency: int, n_rate: int) -> tuple[list[float], float]:
    fn = TASKS[task]
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as executor:
        for _ in range(50):
            executor.submit(fn).result()
        samples = []
        for _ in range(n_latency):
            start = time.perf_counter()
            executor.submit(fn).result()
            samples.append(time.perf_counter() - start)
        start = time.perf_counter()
        futures = [executor.submit(fn) for _ in range(n_rate)]
        for future in futures:
            future.result()
        rate = n_rate / (time.perf_counter() - start)
    return samples, rate


# -- trio_parallel ----------------------------------------------------------------------------


async def trio_parallel_round(
    workers: int, task: str, n_latency: int, n_rate: int
) -> tuple[list[float], float]:
    fn = TASKS[task]
    limiter = trio.CapacityLimiter(workers)
    run_sync = functools.partial(trio_parallel.run_sync, fn, limiter=limiter)
    for _ in range(50):
        await run_sync()
    samples = []
    for _ in range(n_latency):
        start = time.perf_counter()
        await run_sync()
        samples.append(time.perf_counter() - start)
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(n_rate):
            nursery.start_soon(run_sync)
    rate = n_rate / (time.perf_counter() - start)
    return samples, rate


def run_async(
    fn: Callable[[int, str, int, int], Awaitable[tuple[list[float], float]]],
) -> Callable[[int, str, int, int], tuple[list[float], float]]:
    def runner(workers: int, task: str, n_latency: int, n_rate: int) -> tuple[list[float], float]:
        return trio.run(fn, workers, task, n_latency, n_rate)

    return runner


IMPLEMENTATIONS = {
    "perfgate.pool": run_async(pool_round),
    "ProcessPoolExecutor": ppe_round,
    "trio_parallel": run_async(trio_parallel_round),
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-jobs", type=int, default=1000)
    parser.add_argument("--throughput-jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--max-jobs-per-worker",
        type=int,
        default=10**6,
        help="pool recycling; the default never recycles, like both peers (the pool's own "
        "default, 1000, adds a worker start-up every 1000 jobs)",
    )
    args = parser.parse_args()
    global MAX_JOBS_PER_WORKER
    MAX_JOBS_PER_WORKER = args.max_jobs_per_worker

    print(
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"workers={args.workers}, latency jobs={args.latency_jobs}, "
        f"throughput jobs={args.throughput_jobs}, rounds={args.rounds} (median shown), "
        f"pool max_jobs_per_worker={args.max_jobs_per_worker}"
    )
    results: dict[tuple[str, str], Result] = {}
    for task in TASKS:
        for round_index in range(args.rounds):
            for name, run in IMPLEMENTATIONS.items():
                samples, rate = run(args.workers, task, args.latency_jobs, args.throughput_jobs)
                result = results.setdefault((task, name), Result())
                result.add_latency(samples)
                result.rate.append(rate)
                print(
                    f"  round {round_index + 1} {task:8} {name:20} "
                    f"p50 {1000 * percentile(samples, 0.5):.3f} ms, {rate:.0f} jobs/s",
                    file=sys.stderr,
                )

    header = f"{'task':8} {'implementation':20} {'p50 ms':>8} {'p99 ms':>8} {'jobs/s':>9} {'p50 x':>7} {'rate x':>7}"
    print()
    print(header)
    print("-" * len(header))
    for task in TASKS:
        ours = results[(task, "perfgate.pool")]
        ours_p50 = statistics.median(ours.p50_ms)
        ours_rate = statistics.median(ours.rate)
        for name in IMPLEMENTATIONS:
            result = results[(task, name)]
            p50 = statistics.median(result.p50_ms)
            p99 = statistics.median(result.p99_ms)
            rate = statistics.median(result.rate)
            print(
                f"{task:8} {name:20} {p50:8.3f} {p99:8.3f} {rate:9.0f} "
                f"{p50 / ours_p50:7.2f} {rate / ours_rate:7.2f}"
            )
    print("\np50 x / rate x: that implementation's figure divided by perfgate.pool's.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
