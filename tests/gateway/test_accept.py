"""The handshake pace: the pure bucket (on the autojump clock too) and a storm on loopback."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing
from websockets.exceptions import InvalidStatus

from perfgate.errors import retry_after_header
from perfgate.gateway.accept import MAX_WAIT_S, AcceptPace

from .conftest import Start
from .wsclient import Client


def test_the_burst_goes_through_then_handshakes_wait_their_turn() -> None:
    pace = AcceptPace(10.0, 3, now=0.0)
    assert [pace.admit(0.0) for _ in range(3)] == [(True, 0.0)] * 3
    waits = [pace.admit(0.0) for _ in range(10)]
    assert all(admitted for admitted, _ in waits)
    # One turn per 1 / rate, in arrival order, the last within MAX_WAIT_S.
    assert [w for _, w in waits] == pytest.approx([0.1 * i for i in range(1, 11)])
    assert pace.waited == 10 and pace.refused == 0


def test_past_the_longest_wait_handshakes_are_refused_with_spread_retry_afters() -> None:
    pace = AcceptPace(10.0, 1, now=0.0)
    answers = [pace.admit(0.0) for _ in range(40)]
    admitted = [s for ok, s in answers if ok]
    refused = [s for ok, s in answers if not ok]
    assert len(admitted) == 1 + int(MAX_WAIT_S * 10) and max(admitted) <= MAX_WAIT_S
    assert len(refused) == 40 - len(admitted) and pace.refused == len(refused)
    # Each refused client gets a later turn than the one before it, past the waiting ones.
    assert refused[0] > MAX_WAIT_S
    assert refused == sorted(refused) and len(set(refused)) == len(refused)
    assert refused[-1] == pytest.approx(MAX_WAIT_S + 0.1 * len(refused), abs=0.11)
    # A refusal takes no token: once the waiting ones are through, a newcomer is admitted.
    assert pace.admit(MAX_WAIT_S + 0.1) == (True, pytest.approx(0.0, abs=1e-9))


def test_a_quiet_spell_refills_the_burst_and_no_more() -> None:
    pace = AcceptPace(100.0, 5, now=0.0)
    for _ in range(5):
        pace.admit(0.0)
    assert pace.admit(0.0)[1] > 0
    later = [pace.admit(60.0) for _ in range(6)]
    assert [w for _, w in later[:5]] == [0.0] * 5 and later[5][1] > 0


def test_a_slow_pace_and_a_late_storm_are_timed_from_now() -> None:
    """A pace under one handshake a second still paces, and a storm long after start-up gets
    waits and ``Retry-After`` values counted from its own time, not from the clock's zero."""
    pace = AcceptPace(0.5, 1, now=1000.0)
    assert pace.enabled
    assert pace.admit(1000.0) == (True, 0.0)
    ok, retry_after_s = pace.admit(1000.0)  # the next turn is 2 s away: past MAX_WAIT_S
    assert not ok and retry_after_s == pytest.approx(2.0 + 2.0)
    ok, retry_after_s = pace.admit(1000.5)  # 1.5 s to wait: refused, a turn 2 s later
    assert not ok and retry_after_s == pytest.approx(1004.0 + 2.0 - 1000.5)
    assert pace.admit(1001.0) == (True, pytest.approx(1.0))  # refusals took no token


def test_no_pace_admits_everything_at_once() -> None:
    pace = AcceptPace(0.0, 100)
    assert not pace.enabled
    assert all(pace.admit(0.0) == (True, 0.0) for _ in range(10_000))


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert [retry_after_header(s) for s in (0.01, 1.0, 1.2, 7.9)] == ["1", "1", "2", "8"]


async def test_a_storm_is_admitted_at_the_rate(autojump_clock: trio.testing.MockClock) -> None:
    """300 handshakes at once, at 100/s with a burst of 10: by any time t after the storm
    at most 10 + 100 t are through, and those that waited were admitted in arrival order;
    the rest were refused, with turns spread one per 10 ms."""
    pace = AcceptPace(100.0, 10)
    start = trio.current_time()
    admitted: list[tuple[int, float]] = []
    refused: list[float] = []
    arrivals: list[int] = []

    async def handshake(i: int) -> None:
        arrivals.append(i)  # trio starts tasks in its own order: this is arrival order
        ok, seconds = pace.admit(trio.current_time())
        if not ok:
            refused.append(seconds)
            return
        await trio.sleep(seconds)
        admitted.append((i, trio.current_time() - start))

    async with trio.open_nursery() as nursery:
        for i in range(300):
            nursery.start_soon(handshake, i)
    assert len(admitted) == 10 + 100 * MAX_WAIT_S and len(refused) == 300 - len(admitted)
    for count, (_, at) in enumerate(sorted(admitted, key=lambda a: a[1]), start=1):
        assert count <= 10 + 100 * at + 1e-6
    waited = [i for i, at in sorted(admitted, key=lambda a: a[1]) if at > 0]
    assert waited == [i for i in arrivals if i in set(waited)]
    assert max(refused) - min(refused) == pytest.approx((len(refused) - 1) / 100)


async def test_a_burst_beyond_the_rate_on_loopback_is_paced_or_refused_cleanly(
    start_gateway: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """Ten clients at once at 4/s with a burst of 2: the burst is welcomed at once, the
    next ones after their turn (each within a second), the rest get 503 with Retry-After.
    No traceback, no internal error, and every admitted client is served."""
    gateway, url = await start_gateway(accept_rate_per_s=4.0, accept_burst=2)
    welcomed: list[tuple[Client, float]] = []
    statuses: list[tuple[int, str | None]] = []
    start = trio.current_time()

    async def one() -> None:
        try:
            client = await Client.connect(url)
        except InvalidStatus as exc:
            statuses.append((exc.response.status_code, exc.response.headers.get("Retry-After")))
            return
        welcomed.append((client, trio.current_time() - start))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(one)
    assert len(welcomed) == 2 + 4 * MAX_WAIT_S
    assert len(statuses) == 10 - len(welcomed)
    for status, retry_after in statuses:
        assert status == 503 and retry_after is not None and int(retry_after) >= 1
    times = sorted(at for _, at in welcomed)
    assert times[-1] >= 0.75  # the last one waited for its turn (4 turns, 0.25 s apart)
    for client, _ in welcomed:
        reply = await client.request({"op": "ping", "id": 1})
        assert reply["type"] == "ack"
        await client.close()
    stats = gateway.stats()
    assert stats["internal_errors"] == 0
    assert stats["rejected"] == {"503": len(statuses)}
    assert stats["accept"] == {"waited": 4, "refused": len(statuses)}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
