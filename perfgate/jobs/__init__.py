"""Jobs over HTTP: the service that keeps the journal, the pool and the job channels in step.

Public face: :class:`JobService`. It is loaded on first use (PEP 562) so that the pure
:mod:`perfgate.jobs.lifecycle`, which the store imports, does not pull in the service (and,
through it, the store itself).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perfgate.jobs.service import JobService

__all__ = ["JobService"]


def __getattr__(name: str) -> Any:
    if name != "JobService":
        raise AttributeError(f"module 'perfgate.jobs' has no attribute {name!r}")
    return importlib.import_module("perfgate.jobs.service").JobService
