"""The gate on real runs of the ``http`` scenario with a peer (about 30 s a bench on a quiet
2-core machine).

A CPU hog sharing the machine with the second run of an A/A pair must never make the gate
answer 1; a real 30 % slowdown of perfgate's request path must make it answer 1.

9 runs of 0.5 s against one peer rather than 5 of 0.8 s against three: the gate's evidence is
the number of runs (the rank test over 5 runs a side cannot confirm a 30 % move unless nearly
every run agrees, and one disturbed run in 5 is common on a shared machine), and one peer
measured run for run beside perfgate (ABBA: always adjacent in time) keeps the bench short.
On a machine so loaded that perfgate cannot keep 100 requests/s (runs invalid) the gate
answers 2 and these tests fail saying so: nothing can be measured there.
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

#: They measure the machine: ``make test`` runs them after the rest, with nothing beside them.
pytestmark = pytest.mark.alone

SHORT = (
    "http --peers --peer hypercorn-trio --runs 9 --duration 0.5 --warmup 0.3 --rate 100 "
    "--connections 2 --processes 1"
)
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


@pytest.mark.timeout(300)
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


#: Slowed runs tried before a host that stays busier than for the baseline is accepted as
#: the gate's answer (the regression found, and named, but inconclusive for the host).
SLOW_ATTEMPTS = 2


@pytest.mark.timeout(300)
def test_a_real_thirty_percent_slowdown_is_caught(
    baseline: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """Exit 1 when the host is as quiet as for the baseline. A shared CI host may steal more
    CPU during the slowed run than during the baseline: the gate then answers 2 and says why
    (its rule for a busier host), and the slowdown must still be found and named; one more
    slowed run is tried for a clean 1. Never exit 0."""
    path, doc = baseline
    # 30 % of perfgate's median p50 in the baseline, added in front of every request
    p50s = sorted(float(run["latency_ms"]["p50"]) for run in doc["scenarios"]["http"]["runs"])
    delay_ms = 0.3 * p50s[len(p50s) // 2]
    for attempt in range(SLOW_ATTEMPTS):
        code, slowed = bench(
            tmp_path / f"slow{attempt}",
            "--baseline",
            str(path),
            "--test-only-delay-ms",
            f"{delay_ms:.3f}",
        )
        lines = slowed["gate"]["lines"]
        assert slowed["test_injection"] == {
            "delay_ms_per_http_request": pytest.approx(delay_ms, abs=1e-3)
        }
        assert any(ln.startswith("FAIL  http       p50") and "vs peers" in ln for ln in lines), (
            lines
        )
        if code == 1:
            assert lines[-1].startswith("gate: REGRESSION (moved: http p50 vs peers +"), lines
            return
        assert code == 2, lines
        busier = [ln for ln in lines if ln.startswith("INCONCLUSIVE http: slower, but the host")]
        assert busier, lines  # 2 only for a busier host, never for the slowdown itself
        assert lines[-1].startswith("gate: INCONCLUSIVE (moved: http p50 vs peers +"), lines
