"""Per-connection inbound rate limit and the shutdown drain schedule: pure."""

from __future__ import annotations

import math


class TokenBucket:
    """``rate_per_s`` tokens a second, at most ``burst`` saved up. ``rate_per_s == 0``
    disables the limit."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: float, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = burst
        self._stamp = now

    def take(self, now: float) -> bool:
        if self.rate_per_s <= 0:
            return True
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate_per_s)
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


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
