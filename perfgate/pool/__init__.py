"""The subprocess worker pool: warm Python workers, command jobs, priorities, retries, timeouts.

Public face: :class:`Pool`, :class:`JobSpec`, :class:`JobHandle`, :class:`JobOutcome`,
:class:`PermanentError`. Names are loaded on first use (PEP 562) so that the child-process entry
points under this package (``python -m perfgate.pool.worker_main``, ``... .shim``) start
without importing trio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perfgate.pool.job import JobHandle, JobOutcome, JobSpec
    from perfgate.pool.permanent import PermanentError
    from perfgate.pool.pool import Pool
    from perfgate.pool.validation import check_args

__all__ = ["JobHandle", "JobOutcome", "JobSpec", "PermanentError", "Pool", "check_args"]

_HOME = {
    "JobHandle": "perfgate.pool.job",
    "JobOutcome": "perfgate.pool.job",
    "JobSpec": "perfgate.pool.job",
    "PermanentError": "perfgate.pool.permanent",
    "Pool": "perfgate.pool.pool",
    "check_args": "perfgate.pool.validation",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'perfgate.pool' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
