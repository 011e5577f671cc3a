"""The gate on real runs of the ``http`` scenario with peers (a few seconds each).

A CPU hog sharing the machine with the second run of an A/A pair must never make the gate
answer 1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from perfgate.bench import results
from perfgate.bench.cli import bench_main

SHORT = "http --peers --runs 5 --duration 0.8 --warmup 0.3 --rate 100 --connections 2 --processes 1"
HOG = "while True: pass"


def start_hog() -> int:
    """A CPU hog *outside* this process tree (its shell parent exits at once, so it is
    reparented): the bench counts its own tree's CPU as its own, and the hog must count as
    another process's, as another tenant's load on a shared machine would."""
    shell = f"'{sys.executable}' -c '{HOG}' >/dev/null 2>&1 & echo $!"
    return int(subprocess.run(["sh", "-c", shell], capture_output=True, text=True).stdout)


def stop_hog(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(pid).wait(timeout=5)


def bench(out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code = bench_main([*SHORT.split(), "--out", str(out), *extra])
    [path] = sorted(out.glob("2*Z.json"))  # the timestamped result, not a copied baseline
    return code, results.read(path)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("baseline")
    _, doc = bench(out, "--write-baseline", str(out / "baseline.json"))
    assert (out / "baseline.json").exists(), "baseline run invalid: the machine is overloaded"
    yield out / "baseline.json", doc


def test_a_a_with_a_cpu_hog_never_answers_regression(
    baseline: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, _ = baseline
    hogs = [start_hog() for _ in range(2)]
    try:
        code, doc = bench(tmp_path / "hog", "--baseline", str(path))
    finally:
        for hog in hogs:
            stop_hog(hog)
    assert code != 1, doc["gate"]["lines"]
    runs = doc["scenarios"]["http"]["runs"]
    assert all({"others_cpu_pct", "steal_pct", "load_per_core"} <= set(r["host"]) for r in runs)
    # the hogs ran outside the bench's process tree: they count as other processes' CPU
    assert doc["scenarios"]["http"]["host"]["others_cpu_pct"] > 0
