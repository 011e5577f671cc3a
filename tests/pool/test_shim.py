"""The command shim (perfgate.pool.shim): it exits as its command did, by code or by signal."""

from __future__ import annotations

import subprocess
import sys


def test_shim_mirrors_exit_code_and_signal() -> None:
    shim = [sys.executable, "-m", "perfgate.pool.shim", "--"]
    assert subprocess.run([*shim, "sh", "-c", "exit 4"], timeout=60).returncode == 4
    killed = subprocess.run([*shim, "sh", "-c", "kill -TERM $$"], timeout=60)
    assert killed.returncode == -15
    usage = subprocess.run(shim, capture_output=True, timeout=60)
    assert usage.returncode == 2
