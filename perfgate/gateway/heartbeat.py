"""Adaptive heartbeat policy and RTT bookkeeping: pure, time passed in as seconds.

The trio shell (:func:`perfgate.gateway.connection.run_heartbeat`) sleeps
:meth:`HeartbeatPolicy.delay`, then asks :meth:`HeartbeatPolicy.should_probe`. The policy:

- inbound traffic since the last tick proves the peer is alive: no probe, and the interval
  doubles (up to ``max_s``), so busy connections cost no pings;
- an idle connection is probed, and the interval halves (down to ``min_s``), so a
  connection that has gone quiet is checked sooner;
- a slow pong (RTT over ``slow_rtt_s``, a quarter of the pong timeout by default) drops
  the interval straight to ``min_s``: a flaky path is watched closely;
- no pong within ``pong_timeout_s`` of a probe: the caller closes the connection (4009).
"""

from __future__ import annotations

import bisect
import math
from typing import Any


class HeartbeatPolicy:
    __slots__ = (
        "_last_tick",
        "_last_traffic",
        "interval_s",
        "last_rtt_s",
        "max_s",
        "min_s",
        "pong_timeout_s",
        "probes",
        "slow_rtt_s",
        "srtt_s",
    )

    def __init__(
        self,
        min_s: float,
        max_s: float,
        pong_timeout_s: float,
        now: float,
        *,
        slow_rtt_s: float | None = None,
    ) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError("need 0 < min_s <= max_s")
        self.min_s = min_s
        self.max_s = max_s
        self.pong_timeout_s = pong_timeout_s
        self.slow_rtt_s = pong_timeout_s / 4 if slow_rtt_s is None else slow_rtt_s
        self.interval_s = min_s
        self.srtt_s: float | None = None
        self.last_rtt_s: float | None = None
        self.probes = 0
        self._last_tick = now
        self._last_traffic = -math.inf

    def delay(self) -> float:
        """Seconds to sleep before the next tick."""
        return self.interval_s

    def on_traffic(self, now: float) -> None:
        """The peer sent something: it is alive as of ``now``."""
        self._last_traffic = now

    def should_probe(self, now: float) -> bool:
        """Called at a tick: True means "ping now and wait up to ``pong_timeout_s``"."""
        active = self._last_traffic >= self._last_tick
        self._last_tick = now
        if active:
            self.interval_s = min(self.max_s, self.interval_s * 2)
            return False
        self.interval_s = max(self.min_s, self.interval_s / 2)
        self.probes += 1
        return True

    def on_pong(self, rtt_s: float, now: float) -> None:
        """The probe was answered after ``rtt_s``: record it and adapt the interval."""
        self.last_rtt_s = rtt_s
        self.srtt_s = rtt_s if self.srtt_s is None else 0.875 * self.srtt_s + 0.125 * rtt_s
        # The pong proves liveness up to ``now``, but it is not traffic: the next tick
        # must still probe an otherwise idle peer, so the activity window restarts here.
        self._last_tick = now
        if rtt_s > self.slow_rtt_s:
            self.interval_s = self.min_s

    def pong_deadline(self, probe_at: float) -> float:
        return probe_at + self.pong_timeout_s


class RttHistogram:
    """Round-trip times in log-spaced buckets (about 10 % wide), 50 µs to 60 s."""

    _BOUNDS: tuple[float, ...] = tuple(50e-6 * 1.1**i for i in range(150))

    def __init__(self) -> None:
        self._counts = [0] * (len(self._BOUNDS) + 1)
        self.count = 0
        self.total_s = 0.0
        self.max_s = 0.0

    def record(self, rtt_s: float) -> None:
        self._counts[bisect.bisect_left(self._BOUNDS, rtt_s)] += 1
        self.count += 1
        self.total_s += rtt_s
        self.max_s = max(self.max_s, rtt_s)

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the ``q`` quantile (None when empty)."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                bound = self._BOUNDS[index] if index < len(self._BOUNDS) else self.max_s
                return min(bound, self.max_s)
        return self.max_s  # pragma: no cover - unreachable: counts sum to count

    def summary_ms(self) -> dict[str, Any]:
        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 3)

        return {
            "count": self.count,
            "mean": ms(self.total_s / self.count) if self.count else None,
            "p50": ms(self.quantile(0.5)),
            "p90": ms(self.quantile(0.9)),
            "p99": ms(self.quantile(0.99)),
            "max": ms(self.max_s) if self.count else None,
        }
