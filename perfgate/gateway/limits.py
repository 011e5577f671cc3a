"""The shutdown drain schedule: pure. (The per-connection rate limit is
:class:`perfgate.ratelimit.TokenBucket`.)"""

from __future__ import annotations

import math


def drain_schedule(
    connections: int, window_s: float, *, min_interval_s: float = 0.05
) -> list[tuple[float, int]]:
    """Spread closing ``connections`` over ``window_s``, as Phoenix's socket drainer does.

    Returns ``(offset_s, count)`` pairs: at ``offset_s`` after the drain starts, close
    ``count`` more connections. Batches are at least ``min_interval_s`` apart, the last
    one starts at or before ``window_s * 0.8`` (leaving time for the closing handshakes),
    and the counts add up to ``connections``.
    """
    if connections <= 0:
        return []
    span_s = max(0.0, window_s * 0.8)
    batches = max(1, min(connections, int(span_s / min_interval_s) + 1))
    size = math.ceil(connections / batches)
    batches = math.ceil(connections / size)
    step_s = span_s / (batches - 1) if batches > 1 else 0.0
    plan: list[tuple[float, int]] = []
    left = connections
    for index in range(batches):
        count = min(size, left)
        plan.append((index * step_s, count))
        left -= count
    return plan
