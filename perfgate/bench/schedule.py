"""The open-loop schedule: when each request *should* be sent (pure, no I/O, no clock).

wrk2's correction for coordinated omission is to fix every request's intended send time in
advance (a constant arrival rate) and measure its latency from that time, not from when the
client got round to sending it. A stalled server then shows up as latency of every request
that should have been sent during the stall, instead of as a silent pause in the load.

Several client processes share one offered rate: client ``k`` of ``n`` takes every ``n``-th
slot starting at ``k``, so the merged arrivals are evenly spaced at ``rate_per_s``.
Times are plain floats in seconds on whatever clock the caller uses (the load generator uses
``time.monotonic()``, which is system-wide on Linux and so comparable across processes).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import attrs

#: A run whose achieved rate falls under this fraction of the offered rate is INVALID.
MIN_ACHIEVED_FRACTION = 0.99


@attrs.frozen
class Schedule:
    """Evenly spaced intended send times for one slice (``part`` of ``parts``) of the load."""

    rate_per_s: float = attrs.field(validator=attrs.validators.gt(0))
    duration_s: float = attrs.field(validator=attrs.validators.gt(0))
    start_s: float = 0.0
    part: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    parts: int = attrs.field(default=1, validator=attrs.validators.ge(1))

    def __attrs_post_init__(self) -> None:
        if self.part >= self.parts:
            raise ValueError(f"part {self.part} out of range for {self.parts} parts")

    @property
    def interval_s(self) -> float:
        """Time between two sends of the whole load (all parts together)."""
        return 1.0 / self.rate_per_s

    @property
    def total_slots(self) -> int:
        """Sends in the whole load over ``duration_s`` (all parts together)."""
        return max(1, math.floor(self.rate_per_s * self.duration_s + 1e-9))

    def slots(self) -> range:
        """The global sequence numbers this part sends."""
        return range(self.part, self.total_slots, self.parts)

    def __len__(self) -> int:
        return len(self.slots())

    def intended_s(self, seq: int) -> float:
        """The intended send time of global slot ``seq``."""
        return self.start_s + seq * self.interval_s

    def __iter__(self) -> Iterator[tuple[int, float]]:
        """``(seq, intended_s)`` for this part, in order."""
        for seq in self.slots():
            yield seq, self.intended_s(seq)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


def split_for_workers(schedule: Schedule, workers: int) -> list[Schedule]:
    """Split one part's slots among ``workers`` connections (each again a strided slice).

    The result's parts are ``schedule.parts * workers`` wide, so worker ``w`` of part ``k``
    gets global slots ``k + w * parts, k + (w + workers) * parts, ...``.
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    width = schedule.parts * workers
    return [
        attrs.evolve(schedule, part=schedule.part + w * schedule.parts, parts=width)
        for w in range(workers)
    ]


def lag_growth(first_quarter_lag_s: float, last_quarter_lag_s: float, duration_s: float) -> float:
    """How fast the generator fell behind: seconds of extra send lag per second of schedule.

    Compares the median send lag of the first and the last quarter of the schedule (their
    centres are ``0.75 * duration_s`` apart). A generator that keeps up has a flat lag (0);
    one that manages only 90 % of the offered rate falls 0.1 s behind per second (0.1). Medians
    over a quarter each, so one stall (a GC pause, a busy neighbour), which the latency figures
    already charge to every request it delayed, does not by itself decide validity, wherever
    in the run it falls. Never negative: catching up after a slow start is not extra rate.
    """
    if duration_s <= 0:
        return 0.0
    return max(0.0, (last_quarter_lag_s - first_quarter_lag_s) / (0.75 * duration_s))


def achieved_rate(offered_per_s: float, sent: int, scheduled: int, growth: float) -> float:
    """The rate the generator actually sustained: the offered rate, scaled by the share of
    scheduled requests it sent at all and slowed by its :func:`lag_growth`
    (at growth ``g`` it sends 1 request in the time the schedule allows ``1 + g`` for)."""
    if scheduled <= 0:
        return 0.0
    return offered_per_s * (sent / scheduled) / (1.0 + growth)


def is_valid(achieved_per_s: float, offered_per_s: float) -> bool:
    """Whether a run kept its schedule well enough to be measured (``>= 99 %`` of offered)."""
    return achieved_per_s >= MIN_ACHIEVED_FRACTION * offered_per_s


def interleave(systems: Sequence[str], runs: int) -> list[tuple[int, str]]:
    """The order to measure ``runs`` repetitions of each system in: ABBA, generalised.

    Rounds alternate forward and reversed order (A B | B A | A B ...), so a slow drift of the
    machine (thermal, a neighbour's job) hits every system equally on average instead of
    biasing whichever is always measured last. Returns ``(run_index, system)`` pairs.
    """
    order: list[tuple[int, str]] = []
    for r in range(runs):
        names = list(systems) if r % 2 == 0 else list(reversed(systems))
        order.extend((r, name) for name in names)
    return order
