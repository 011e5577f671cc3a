"""Token buckets: refill, burst, cost, and a bounded client map."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfgate.ratelimit import KeyedBuckets, TokenBucket


def test_burst_then_refill() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=3)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.take(0.0)
    assert math.isclose(wait, 0.1)
    assert bucket.take(0.1) == 0.0  # one token refilled after 100 ms
    assert bucket.take(0.1) > 0


def test_cost_weights_writes() -> None:
    bucket = TokenBucket(rate_per_s=1, burst=5)
    assert bucket.take(0.0, cost=5) == 0.0
    assert math.isclose(bucket.take(0.0, cost=5), 5.0)


def test_clock_going_backwards_does_not_mint_tokens() -> None:
    bucket = TokenBucket(rate_per_s=1, burst=1)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(5.0) > 0


@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=200))
def test_never_more_than_rate_times_time_plus_burst(gaps: list[float]) -> None:
    bucket = TokenBucket(rate_per_s=20, burst=5)
    now, granted = 0.0, 0
    for gap in gaps:
        now += gap
        if bucket.take(now) == 0.0:
            granted += 1
    assert granted <= 5 + 20 * now + 1e-9


def test_keyed_buckets_are_bounded_and_per_client() -> None:
    buckets = KeyedBuckets(rate_per_s=1, burst=1, max_keys=100)
    for i in range(1000):
        assert buckets.take(f"client-{i}", 0.0) == 0.0
    assert len(buckets) == 100
    assert buckets.take("client-999", 0.0) > 0
    assert not KeyedBuckets(rate_per_s=0, burst=1).take("x", 0.0)


def test_rate_zero_means_no_limit() -> None:
    bucket = TokenBucket(rate_per_s=0, burst=1)
    assert all(bucket.take(0.0) == 0.0 for _ in range(100))


def test_per_connection_use_with_a_start_time() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=2.0, updated_at=0.0)
    assert bucket.take(0.0) == 0.0 and bucket.take(0.0) == 0.0
    assert bucket.take(0.0) > 0
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) > 0


def test_a_clock_going_backwards_takes_no_tokens_away() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=5)
    assert bucket.take(now=10.0) == 0.0
    assert bucket.take(now=5.0) == 0.0  # earlier than the last take: no refill, and no debt
    assert bucket.tokens == 3.0


def test_refill_counts_from_the_last_take_not_from_zero() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=4)
    assert bucket.take(now=100.0, cost=4) == 0.0
    assert bucket.take(now=100.25) == 0.25  # half a token back, the other half in 0.25 s
    assert bucket.take(now=100.5) == 0.0
    assert bucket.tokens == 0.0


def test_keyed_buckets_pass_the_time_and_the_cost_through() -> None:
    buckets = KeyedBuckets(rate_per_s=1.0, burst=5)
    assert buckets.take("a", now=50.0, cost=5) == 0.0
    assert buckets.take("a", now=50.0) == 1.0
    assert buckets.take("a", now=51.0) == 0.0  # a second later, a token is back


def test_reserve_goes_into_debt_and_says_how_long_to_wait() -> None:
    bucket = TokenBucket(10.0, 2.0)
    assert bucket.reserve(0.0) == 0.0 and bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == pytest.approx(0.1)  # taken all the same: one token of debt
    assert bucket.reserve(0.0) == pytest.approx(0.2)
    assert bucket.tokens == pytest.approx(-2.0)
    assert bucket.take(0.25) == pytest.approx(0.05)  # the debt is paid first
    assert TokenBucket(0.0, 1.0).reserve(0.0) == 0.0  # rate 0: no limit
