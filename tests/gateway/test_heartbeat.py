"""The heartbeat policy and the timer queue (pure), and the Pulse task on the autojump clock."""

import math
import random

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from perfgate.gateway.heartbeat import (
    GRID_S,
    JITTER,
    HeartbeatPolicy,
    HeartbeatTiming,
    RttHistogram,
    TimerQueue,
    on_grid,
)
from perfgate.gateway.pulse import TIMERS_PER_ROUND, Pulse

TIMING = HeartbeatTiming(min_s=1.0, max_s=8.0, pong_timeout_s=2.0)


def test_an_idle_healthy_connection_is_checked_once_per_max_interval() -> None:
    p = HeartbeatPolicy(TIMING, now=0.0)
    now = p.first_check_at(0.9)
    assert 0.0 < now <= 8.0
    assert p.should_probe(now, 0.5)
    for _ in range(5):
        now += 0.01
        p.on_pong(0.01, now)  # fast pongs keep it at the maximum: never halved
        at = p.check_at(0.5)
        assert now + 8.0 * (1 - JITTER) <= at <= now + 8.0
        now = at
        assert p.should_probe(now, 0.5)
    assert p.interval_s == 8.0 and p.probes == 6


def test_the_first_check_probes_whatever_the_traffic() -> None:
    """It sets the connection's phase: a burst of connections subscribing together would
    otherwise all be put off to the same time (seen at 10,000: 4x the mean ping rate)."""
    p = HeartbeatPolicy(TIMING, now=0.0)
    at = p.first_check_at(0.5)
    p.on_traffic(0.1)  # the subscribe
    assert p.should_probe(at, 0.0)


def test_traffic_counts_as_liveness_and_an_early_timer_probes_nothing() -> None:
    p = HeartbeatPolicy(TIMING, now=0.0)
    at = p.check_at(0.0)
    assert not p.should_probe(at - 1.0, 0.0)  # another timer (a slow-consumer check)
    assert p.due_at == at
    p.on_traffic(at - 0.5)
    assert not p.should_probe(at, 0.0)
    assert p.due_at == pytest.approx(at - 0.5 + 8.0)
    assert p.probes == 0


def test_a_slow_pong_is_watched_closely_then_trusted_again() -> None:
    p = HeartbeatPolicy(TIMING, now=0.0)
    p.on_pong(0.9, 8.0)  # over pong_timeout_s / 4
    assert p.interval_s == 1.0 and p.last_rtt_s == 0.9 and p.srtt_s == 0.9
    assert p.check_at(0.0) == pytest.approx(9.0)
    intervals = []
    for step in range(4):
        p.on_pong(0.01, 9.0 + step)
        intervals.append(p.interval_s)
    assert intervals == [2.0, 4.0, 8.0, 8.0]


@given(
    traffic=st.lists(st.floats(0.0, 100.0), max_size=20),
    rands=st.lists(st.floats(0.0, 0.999), min_size=1, max_size=50),
    slow=st.booleans(),
)
def test_a_dead_peer_is_probed_within_max_s_of_its_last_sign_of_life(
    traffic: list[float], rands: list[float], slow: bool
) -> None:
    """Whatever the traffic before it dies, the peer's last sign of life is followed by a
    probe within heartbeat_max_s: with the pong timeout, it is cut within their sum."""
    p = HeartbeatPolicy(TIMING, now=0.0)
    if slow:
        p.on_pong(1.5, 0.0)
    events = sorted(traffic)
    last_alive = 0.0
    at = p.first_check_at(rands[0])
    i = 0
    for rand in rands * 3:
        while i < len(events) and events[i] <= at:
            if events[i] > last_alive:  # time only moves on: none before the last pong
                p.on_traffic(events[i])
                last_alive = events[i]
            i += 1
        if p.should_probe(at, rand):
            assert at - last_alive <= TIMING.max_s + 1e-9
            if i == len(events):
                return  # the peer is dead: it is cut at most pong_timeout_s later
            p.on_pong(0.01, at + 0.01)
            last_alive = at + 0.01
            at = p.check_at(rand)
        else:
            at = p.due_at
        assert at - last_alive <= TIMING.max_s + 1e-9


def test_connections_opened_together_do_not_ping_together() -> None:
    rng = random.Random(7)
    policies = [HeartbeatPolicy(TIMING, now=0.0) for _ in range(10_000)]
    firsts = sorted(p.first_check_at(rng.random()) for p in policies)
    # All in the second half of the first interval: none early, none late.
    assert TIMING.max_s / 2 < firsts[0] and firsts[-1] <= TIMING.max_s
    assert firsts[-1] - firsts[0] >= TIMING.max_s / 2 * 0.95
    per_tenth = [0] * 40
    for at in firsts:
        per_tenth[min(39, int((at - TIMING.max_s / 2) * 10))] += 1
    # Spread evenly over that half: no tenth of a second holds a burst.
    assert max(per_tenth) <= 2 * len(firsts) / 40


@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999])
def test_the_first_check_falls_in_the_second_half_of_the_first_interval(rand: float) -> None:
    p = HeartbeatPolicy(TIMING, now=100.0)
    at = p.first_check_at(rand)
    assert 100.0 + TIMING.max_s / 2 < at <= 100.0 + TIMING.max_s
    assert not p.should_probe(100.0 + TIMING.max_s / 2, rand)  # not due in the first half
    assert p.should_probe(at, rand)


@given(when=st.floats(-1e6, 1e6), step=st.sampled_from([0.25, 0.5, 1.0]))
def test_the_grid_rounds_up_by_less_than_one_step(when: float, step: float) -> None:
    at = on_grid(when, step)
    assert when <= at <= when + step
    assert at / step == pytest.approx(round(at / step), abs=1e-6)
    assert on_grid(at, step) == at  # already on the grid: unchanged


def test_no_grid_leaves_the_time_alone() -> None:
    assert on_grid(1.2345, 0.0) == 1.2345
    assert on_grid(math.inf, GRID_S) == math.inf


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        HeartbeatTiming(min_s=2.0, max_s=1.0, pong_timeout_s=1.0)


def test_timer_queue_fires_in_order_and_skips_cancelled() -> None:
    q: TimerQueue[str] = TimerQueue()
    q.add(3.0, "c")
    b = q.add(2.0, "b")
    q.add(1.0, "a")
    q.cancel(b)
    assert len(q) == 2 and q.next_at() == 1.0
    assert [t for _, t in q.pop_due(2.5)] == ["a"]
    assert q.next_at() == 3.0
    assert [t for _, t in q.pop_due(3.0)] == ["c"]
    assert q.next_at() is None


def test_rtt_histogram() -> None:
    hist = RttHistogram()
    assert hist.quantile(0.5) is None
    for ms in range(1, 101):
        hist.record(ms / 1000)
    assert hist.quantile(0.5) == pytest.approx(0.050, rel=0.11)
    assert hist.quantile(0.99) == pytest.approx(0.099, rel=0.11)
    summary = hist.summary_ms()
    assert summary["count"] == 100 and summary["max"] == 100.0


class Recorder:
    def __init__(self, fired: list[tuple[str, float]], name: str) -> None:
        self.fired = fired
        self.name = name

    def on_timer(self, now: float) -> None:
        self.fired.append((self.name, now))


async def test_pulse_fires_each_timer_at_its_time(autojump_clock: trio.testing.MockClock) -> None:
    pulse = Pulse(grid_s=0.0)
    fired: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(pulse.run)
        start = trio.current_time()
        pulse.call_at(start + 10, Recorder(fired, "late"))
        await trio.sleep(1)
        # Earlier than what the task sleeps towards: it must wake for it.
        pulse.call_at(start + 2, Recorder(fired, "early"))
        gone = pulse.call_at(start + 5, Recorder(fired, "cancelled"))
        pulse.cancel(gone)
        await trio.sleep(20)
        nursery.cancel_scope.cancel()
    assert fired == [("early", start + 2), ("late", start + 10)]


async def test_a_burst_of_due_timers_is_served_between_checkpoints(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pulse = Pulse(grid_s=0.0)
    fired: list[tuple[str, float]] = []
    other_ran: list[int] = []

    async def other() -> None:
        while len(fired) < TIMERS_PER_ROUND * 4:
            other_ran.append(len(fired))
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        await nursery.start(pulse.run)
        at = trio.current_time()  # all due now
        for i in range(TIMERS_PER_ROUND * 4):
            pulse.call_at(at, Recorder(fired, str(i)))
        nursery.start_soon(other)
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    assert len(fired) == TIMERS_PER_ROUND * 4
    # Other tasks ran while the burst was being served, not only after it.
    assert any(0 < n < len(fired) for n in other_ran)


def test_rtt_summary_is_exact_where_it_can_be() -> None:
    empty = RttHistogram()
    assert empty.summary_ms() == dict.fromkeys(("mean", "p50", "p90", "p99", "max")) | {"count": 0}
    hist = RttHistogram()
    for rtt_s in (0.001, 0.002, 0.004):
        hist.record(rtt_s)
    summary = hist.summary_ms()
    # A quantile is the upper bound of its bucket (about 10 % wide), never above the maximum.
    assert 2.0 <= summary.pop("p50") <= 2.2
    assert summary == {"count": 3, "mean": 2.333, "p90": 4.0, "p99": 4.0, "max": 4.0}
    assert 0.001 <= hist.quantile(0.0) <= 0.0011  # the smallest is rank 1, not 2
    hist.record(100.0)  # beyond the last bucket (60 s)
    assert hist.quantile(1.0) == 100.0


def test_rtt_summary_quantiles_are_not_the_maximum() -> None:
    hist = RttHistogram()
    for ms in range(1, 101):
        hist.record(ms / 1000)
    hist.record(5.0)  # one outlier: it is the max, not the p90 or the p99
    summary = hist.summary_ms()
    assert 91 <= summary["p90"] <= 91 * 1.1
    assert 100 <= summary["p99"] <= 100 * 1.1
    assert summary["max"] == 5000.0


async def test_the_pulse_serves_timers_on_its_grid(autojump_clock: trio.testing.MockClock) -> None:
    """Deadlines spread over 10 s fire late by less than a step, never early, and a whole
    step's worth of them fires in one wake-up (at most one wake-up per step in all)."""
    pulse = Pulse(grid_s=0.5)
    fired: list[tuple[str, float]] = []
    rng = random.Random(3)
    async with trio.open_nursery() as nursery:
        await nursery.start(pulse.run)
        start = trio.current_time()
        asked = {str(i): start + 1 + rng.random() * 10 for i in range(1000)}
        for name, when in asked.items():
            pulse.call_at(when, Recorder(fired, name))
        await trio.sleep(15)
        nursery.cancel_scope.cancel()
    assert len(fired) == 1000
    for name, at in fired:
        assert asked[name] <= at < asked[name] + 0.5
    wakeups = {at for _, at in fired}
    assert len(wakeups) <= 10 / 0.5 + 1  # not one per timer
    for at in wakeups:
        assert on_grid(at, 0.5) == at


async def test_an_earlier_timer_on_the_grid_still_wakes_the_pulse(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pulse = Pulse(grid_s=0.25)
    fired: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(pulse.run)
        start = trio.current_time()
        pulse.call_at(start + 10, Recorder(fired, "late"))
        await trio.sleep(1)
        pulse.call_at(start + 2.1, Recorder(fired, "early"))
        await trio.sleep(20)
        nursery.cancel_scope.cancel()
    assert fired == [("early", on_grid(start + 2.1, 0.25)), ("late", on_grid(start + 10, 0.25))]
    assert start + 2.1 <= fired[0][1] < start + 2.35
