"""Without the ``bench`` extra: ``perfgate bench`` says so in one line (exit 2), and
``perfgate gate`` still works. Real subprocesses with the extra's modules made unimportable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from perfgate.bench.cli import BENCH_MODULES, missing_bench_packages
from tests.bench import synthetic

BLOCKER = """
import sys

BLOCKED = {blocked!r}


class _NotInstalled:
    # behaves as if the distributions were not installed: import raises ModuleNotFoundError
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
"""


def run_blocked(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=sorted(BENCH_MODULES)))
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_blocker_blocks(tmp_path: Path) -> None:
    for module in BENCH_MODULES:
        done = run_blocked(tmp_path, "-c", f"import {module}")
        assert done.returncode == 1
        assert "ModuleNotFoundError" in done.stderr


def test_bench_without_the_extra_exits_2_with_one_line(tmp_path: Path) -> None:
    done = run_blocked(tmp_path, "-m", "perfgate", "bench", "http", "--out", str(tmp_path / "r"))
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert "pip install 'perfgate[bench]'" in line
    for package in BENCH_MODULES.values():
        assert package in line
    assert not (tmp_path / "r").exists()


def test_gate_works_without_the_extra(tmp_path: Path) -> None:
    base, same, slow = tmp_path / "b.json", tmp_path / "s.json", tmp_path / "c.json"
    base.write_text(json.dumps(synthetic.result(seed=1)))
    same.write_text(json.dumps(synthetic.result(seed=2)))
    slow.write_text(json.dumps(synthetic.result(seed=2, latency_scale=2.0)))
    passed = run_blocked(tmp_path, "-m", "perfgate", "gate", str(base), str(same))
    assert (passed.returncode, passed.stderr) == (0, "")
    assert passed.stdout.splitlines()[-1] == "gate: PASS"
    failed = run_blocked(tmp_path, "-m", "perfgate", "gate", str(base), str(slow))
    assert failed.returncode == 1
    assert failed.stdout.splitlines()[-1].startswith("gate: REGRESSION")


def test_with_the_extra_nothing_is_missing() -> None:
    assert missing_bench_packages() == []
