"""The heartbeat policy and the gateway's timer queue: pure, time passed in as seconds.

At scale most connections are idle and healthy, so the common case must cost little
(issue 16.3: halving an idle connection's interval down to ``heartbeat_min_s`` cost 20 % of a
core for 5,000 idle connections). The policy, per connection:

- any inbound frame is proof of life (:meth:`HeartbeatPolicy.on_traffic`), so a busy
  connection is never pinged;
- an idle, healthy connection is pinged once per ``heartbeat_max_s``, shortened by a random
  jitter of up to :data:`JITTER` of the interval, and its first check falls anywhere in the
  second half of the first interval, so that connections opened together (a reconnect
  storm) do not ping together, then or later, and none is pinged early: a check in the
  first half would cost a ping per new connection and prove nothing the handshake has not;
- a pong slower than ``slow_rtt_s`` (a quarter of ``pong_timeout_s``) drops the interval to
  ``heartbeat_min_s``: a flaky path is watched closely; each fast pong then doubles it back
  towards ``heartbeat_max_s``;
- no pong within ``pong_timeout_s``: the connection is closed (4009). So a dead peer is cut
  at most ``heartbeat_max_s + pong_timeout_s + GRID_S`` after its last sign of life.

One task serves every connection's timers (:class:`perfgate.gateway.pulse.Pulse`, over the
:class:`TimerQueue` below), instead of one sleeping task per connection, and it wakes only on
a coarse grid (:func:`on_grid`, :data:`GRID_S`): every deadline is rounded *up* to the next
multiple of the step, so one wake-up serves every timer due in that step. At 10,000 idle
connections, checked every 22.5 to 30 s, that is at most 4 wake-ups a second instead of about
400; no check is early, and none is later than one step (the bound above grows by it).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from typing import Any, Generic, TypeVar

JITTER = 0.25
"""Up to this fraction of an interval is cut at random from each check's delay."""

GRID_S = 0.25
"""The timer grid's step: a deadline is served at most this much late (never early)."""


def on_grid(when: float, step_s: float) -> float:
    """``when`` rounded up to the next multiple of ``step_s`` (unchanged when ``step_s`` is
    0 or ``when`` is not finite). Deadlines that fall in one step share one wake-up."""
    if step_s <= 0 or not math.isfinite(when):
        return when
    return math.ceil(when / step_s) * step_s


T = TypeVar("T")


class HeartbeatTiming:
    """The bounds, shared by every connection of a gateway (one object, not one each)."""

    __slots__ = ("max_s", "min_s", "pong_timeout_s", "slow_rtt_s")

    def __init__(
        self, min_s: float, max_s: float, pong_timeout_s: float, *, slow_rtt_s: float | None = None
    ) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError("need 0 < min_s <= max_s")
        self.min_s = min_s
        self.max_s = max_s
        self.pong_timeout_s = pong_timeout_s
        self.slow_rtt_s = pong_timeout_s / 4 if slow_rtt_s is None else slow_rtt_s


class HeartbeatPolicy:
    """One connection's heartbeat state. The shell sets a timer at :meth:`first_check_at`,
    then at :attr:`due_at` whenever :meth:`should_probe` says no, and at :meth:`check_at`
    after a pong (:meth:`on_pong`); it closes the connection itself when a pong is late."""

    __slots__ = (
        "_seen_alive_at",
        "due_at",
        "interval_s",
        "last_alive_at",
        "last_rtt_s",
        "probes",
        "srtt_s",
        "timing",
    )

    def __init__(self, timing: HeartbeatTiming, now: float) -> None:
        self.timing = timing
        self.interval_s = timing.max_s
        self.last_alive_at = now
        self._seen_alive_at = now
        self.due_at = now + self.interval_s
        self.srtt_s: float | None = None
        self.last_rtt_s: float | None = None
        self.probes = 0

    def on_traffic(self, now: float) -> None:
        """The peer sent something: it is alive as of ``now``."""
        self.last_alive_at = now

    def check_at(self, rand: float) -> float:
        """When to look at this connection next (:attr:`due_at`); ``rand`` in [0, 1)
        picks the jitter."""
        return self._set(self.interval_s * (1.0 - JITTER * rand))

    def _set(self, delay_s: float) -> float:
        self._seen_alive_at = self.last_alive_at
        self.due_at = self.last_alive_at + delay_s
        return self.due_at

    def first_check_at(self, rand: float) -> float:
        """The first look, anywhere in the second half of the first interval (``rand`` in
        [0, 1)). It probes whatever the traffic: it sets the connection's phase, so the
        pings of connections opened (and subscribed) in one burst stay spread over half an
        interval at first and, with each check's jitter, more later. Not in the first half:
        a connection that just shook hands is alive, and a ping for every new connection
        soon after it opened (a reconnect storm) is a burst of work that proves nothing.
        The next checks follow :meth:`check_at`."""
        due_at = self._set(self.interval_s * (1.0 - 0.5 * rand))
        self._seen_alive_at = math.inf  # traffic before it does not put it off
        return due_at

    def should_probe(self, now: float, rand: float) -> bool:
        """At a timer: True means "ping now and wait up to ``pong_timeout_s``". False
        means not yet: the check is not due, or the peer showed life since it was set (the
        next is then set from that, with ``rand``): look again at :attr:`due_at`."""
        if self.last_alive_at > self._seen_alive_at:
            self.check_at(rand)
            return False
        if now < self.due_at:
            return False
        self.probes += 1
        return True

    def on_pong(self, rtt_s: float, now: float) -> None:
        """The probe was answered after ``rtt_s``: record it and adapt the interval."""
        self.last_alive_at = now
        self.last_rtt_s = rtt_s
        self.srtt_s = rtt_s if self.srtt_s is None else 0.875 * self.srtt_s + 0.125 * rtt_s
        timing = self.timing
        if rtt_s > timing.slow_rtt_s:
            self.interval_s = timing.min_s
        else:
            self.interval_s = min(timing.max_s, self.interval_s * 2)


Timer = list[Any]
"""``[when, seq, target]``; ``target`` is None once cancelled."""


class TimerQueue(Generic[T]):
    """Many deadlines behind one sleeper: a heap with lazy cancellation (as asyncio's
    ``TimerHandle.cancel``). Pure: the caller passes the time."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()

    def add(self, when: float, target: T) -> Timer:
        timer = [when, next(self._seq), target]
        heapq.heappush(self._heap, timer)
        return timer

    @staticmethod
    def cancel(timer: Timer) -> None:
        timer[2] = None

    def next_at(self) -> float | None:
        """The earliest live deadline (None: no timer)."""
        heap = self._heap
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float, limit: int = 1_000_000) -> list[tuple[Timer, T]]:
        """Up to ``limit`` timers due by ``now`` (earliest first), removed from the queue."""
        heap = self._heap
        due: list[tuple[Timer, T]] = []
        while heap and heap[0][0] <= now and len(due) < limit:
            timer = heapq.heappop(heap)
            if timer[2] is not None:
                due.append((timer, timer[2]))
        return due

    def __len__(self) -> int:
        return sum(1 for timer in self._heap if timer[2] is not None)


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
