"""Retry back-off: exponential with full jitter and a cap. Pure: randomness is passed in.

"Full jitter" (AWS architecture blog, *Exponential Backoff And Jitter*, 2015) draws the delay
uniformly from ``[0, min(cap, base * 2**(n-1))]``: retries of many jobs that failed together
spread out instead of arriving in synchronised waves.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_ceiling_s(attempt: int, *, base_s: float, cap_s: float) -> float:
    """The upper bound of the delay after failed attempt number ``attempt`` (1-based)."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    # min() before the power would overflow: 2**1100 is fine for int but not for float.
    exponent = min(attempt - 1, 64)
    return min(cap_s, base_s * (2.0**exponent))


def backoff_delay_s(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """A delay drawn uniformly from ``[0, backoff_ceiling_s(attempt)]``."""
    return uniform(0.0, backoff_ceiling_s(attempt, base_s=base_s, cap_s=cap_s))
