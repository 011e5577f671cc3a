"""The gate on real runs of the ``http`` scenario with peers (a few seconds each).

A CPU hog sharing the machine with the second run of an A/A pair must never make the gate
answer 1.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perfgate.bench import results
from perfgate.bench.cli import bench_main

SHORT = "http --peers --runs 5 --duration 0.8 --warmup 0.3 --rate 100 --connections 2 --processes 1"
HOG = "import time\nwhile True:\n    time.perf_counter()\n"


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
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(2)]
    try:
        code, doc = bench(tmp_path / "hog", "--baseline", str(path))
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert code != 1, doc["gate"]["lines"]
    runs = doc["scenarios"]["http"]["runs"]
    assert all({"others_cpu_pct", "steal_pct", "load_per_core"} <= set(r["host"]) for r in runs)
    # the hogs ran outside the bench's process tree: they count as other processes' CPU
    assert doc["scenarios"]["http"]["host"]["others_cpu_pct"] > 0
