"""Retry back-off: a doubling ceiling with a cap, full jitter under it."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfgate.pool.backoff import backoff_ceiling_s, backoff_delay_s


def test_backoff_ceiling_doubles_then_caps() -> None:
    ceilings = [backoff_ceiling_s(n, base_s=0.5, cap_s=5.0) for n in range(1, 7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff_ceiling_s(10_000, base_s=0.5, cap_s=5.0) == 5.0


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=200), st.integers())
def test_backoff_delay_is_full_jitter(attempt: int, seed: int) -> None:
    rng = random.Random(seed)
    delay = backoff_delay_s(attempt, base_s=0.1, cap_s=3.0, uniform=rng.uniform)
    assert 0.0 <= delay <= backoff_ceiling_s(attempt, base_s=0.1, cap_s=3.0)


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1, got 0"):
        backoff_ceiling_s(0, base_s=1, cap_s=1)
