"""The child-process entry points start light: no trio in a worker or a command shim."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["perfgate.pool.worker_main", "perfgate.pool.shim"])
def test_child_entry_points_do_not_import_trio(module: str) -> None:
    code = f"import sys, {module}; print('trio' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_public_names_resolve_lazily() -> None:
    import perfgate.pool as pool

    assert pool.Pool.__name__ == "Pool"
    assert issubclass(pool.PermanentError, Exception)
    with pytest.raises(AttributeError):
        _ = pool.Nope  # type: ignore[attr-defined]


def test_shim_mirrors_exit_code_and_signal() -> None:
    shim = [sys.executable, "-m", "perfgate.pool.shim", "--"]
    assert subprocess.run([*shim, "sh", "-c", "exit 4"], timeout=60).returncode == 4
    killed = subprocess.run([*shim, "sh", "-c", "kill -TERM $$"], timeout=60)
    assert killed.returncode == -15
    usage = subprocess.run(shim, capture_output=True, timeout=60)
    assert usage.returncode == 2
