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
