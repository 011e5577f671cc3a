"""The heartbeat policy (pure) and its trio loop, on trio's autojump clock."""

import pytest
import trio
import trio.testing

from perfgate.gateway import run_heartbeat
from perfgate.gateway.heartbeat import HeartbeatPolicy, RttHistogram


def policy(now: float = 0.0) -> HeartbeatPolicy:
    return HeartbeatPolicy(min_s=1.0, max_s=8.0, pong_timeout_s=2.0, now=now)


def test_traffic_stretches_the_interval_and_skips_probes() -> None:
    p = policy()
    now = 0.0
    intervals = []
    for _ in range(5):
        now += p.delay()
        p.on_traffic(now - 0.1)
        assert not p.should_probe(now)
        intervals.append(p.delay())
    assert intervals == [2.0, 4.0, 8.0, 8.0, 8.0]
    assert p.probes == 0


def test_idle_connections_are_probed_sooner() -> None:
    p = policy()
    p.interval_s = 8.0
    assert p.should_probe(8.0)
    assert p.delay() == 4.0
    p.on_pong(0.01, 8.01)
    assert p.should_probe(12.01)
    assert p.delay() == 2.0
    assert p.probes == 2


def test_a_pong_is_not_mistaken_for_traffic() -> None:
    p = policy()
    assert p.should_probe(1.0)
    p.on_pong(0.01, 1.01)
    assert p.should_probe(2.01)


def test_slow_pong_drops_to_the_minimum() -> None:
    p = policy()
    p.interval_s = 8.0
    p.on_pong(0.9, 1.0)  # over pong_timeout_s / 4
    assert p.delay() == 1.0
    assert p.last_rtt_s == 0.9 and p.srtt_s == 0.9


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^need 0 < min_s <= max_s$"):
        HeartbeatPolicy(min_s=2.0, max_s=1.0, pong_timeout_s=1.0, now=0.0)
    with pytest.raises(ValueError, match=r"^need 0 < min_s <= max_s$"):
        HeartbeatPolicy(min_s=0.0, max_s=1.0, pong_timeout_s=1.0, now=0.0)
    fixed = HeartbeatPolicy(min_s=1.0, max_s=1.0, pong_timeout_s=1.0, now=0.0)  # allowed
    assert fixed.delay() == 1.0


def test_a_slow_pong_is_one_over_a_quarter_of_the_pong_timeout_by_default() -> None:
    p = policy()  # pong_timeout_s=2.0
    assert p.slow_rtt_s == 0.5 and p.last_rtt_s is None and p.srtt_s is None
    p.interval_s = 8.0
    p.on_pong(0.5, 1.0)  # exactly the threshold: not slow
    assert p.interval_s == 8.0
    own = HeartbeatPolicy(min_s=1.0, max_s=8.0, pong_timeout_s=2.0, now=0.0, slow_rtt_s=0.1)
    own.interval_s = 8.0
    own.on_pong(0.2, 1.0)
    assert own.slow_rtt_s == 0.1 and own.interval_s == 1.0


def test_smoothed_rtt_weighs_each_new_pong_by_an_eighth() -> None:
    p = policy()
    p.on_pong(0.1, 1.0)
    assert (p.srtt_s, p.last_rtt_s) == (0.1, 0.1)
    p.on_pong(0.2, 2.0)
    assert p.srtt_s == pytest.approx(0.875 * 0.1 + 0.125 * 0.2)
    assert p.last_rtt_s == 0.2


def test_traffic_at_the_very_tick_counts_as_activity() -> None:
    p = policy(now=5.0)
    p.on_traffic(5.0)
    assert not p.should_probe(6.0)
    assert p.probes == 0


def test_rtt_histogram() -> None:
    hist = RttHistogram()
    assert hist.quantile(0.5) is None
    for ms in range(1, 101):
        hist.record(ms / 1000)
    assert hist.quantile(0.5) == pytest.approx(0.050, rel=0.11)
    assert hist.quantile(0.99) == pytest.approx(0.099, rel=0.11)
    summary = hist.summary_ms()
    assert summary["count"] == 100 and summary["max"] == 100.0


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


async def test_unanswered_probe_ends_the_loop_at_the_pong_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    p = policy(trio.current_time())
    probes: list[float] = []

    async def ping() -> None:
        probes.append(trio.current_time())
        await trio.sleep_forever()  # never answered

    start = trio.current_time()
    await run_heartbeat(p, ping)
    assert probes == [start + 1.0]
    assert trio.current_time() == pytest.approx(start + 1.0 + 2.0)


async def test_answered_probes_record_rtt_and_continue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    p = policy(trio.current_time())
    rtts: list[float] = []
    ticks: list[float] = []
    answered = 0

    async def ping() -> None:
        nonlocal answered
        if answered == 3:
            await trio.sleep_forever()
        answered += 1
        await trio.sleep(0.25)

    await run_heartbeat(p, ping, on_rtt=rtts.append, on_tick=ticks.append)
    assert rtts == pytest.approx([0.25, 0.25, 0.25])
    assert len(ticks) == 4
    assert p.probes == 4


async def test_traffic_suppresses_probes(autojump_clock: trio.testing.MockClock) -> None:
    p = policy(trio.current_time())
    pinged = trio.Event()

    async def ping() -> None:
        pinged.set()

    async def chatty() -> None:
        while not pinged.is_set():
            p.on_traffic(trio.current_time())
            await trio.sleep(0.5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(chatty)
        with trio.move_on_after(30):
            await run_heartbeat(p, ping, on_tick=lambda now: None)
        nursery.cancel_scope.cancel()
    assert not pinged.is_set()
    assert p.delay() == 8.0
