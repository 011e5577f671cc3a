"""The tasks the pool benchmark runs, identical for every implementation measured."""

from __future__ import annotations

import time
from typing import Any


def noop(ctx: Any = None) -> None:
    return None


def cpu_1ms(ctx: Any = None) -> int:
    """Spin on the CPU for one millisecond."""
    deadline = time.perf_counter() + 0.001
    spins = 0
    while time.perf_counter() < deadline:
        spins += 1
    return spins
