"""Retention policy: the sweep period, clipped log lines, how many log lines are kept."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from perfgate.store.retention import (
    MAX_LOG_LINE_CHARS,
    SWEEP_MAX_PERIOD_S,
    SWEEP_MIN_PERIOD_S,
    clip_line,
    first_kept_seq,
    sweep_period_s,
)


def test_sweep_period_follows_ttl_within_bounds() -> None:
    assert sweep_period_s(100.0) == 10.0
    assert sweep_period_s(0.5) == SWEEP_MIN_PERIOD_S
    assert sweep_period_s(86_400.0) == SWEEP_MAX_PERIOD_S


def test_clip_line() -> None:
    assert clip_line("hello\r\n") == "hello"
    long = clip_line("x" * (MAX_LOG_LINE_CHARS * 3))
    assert len(long) == MAX_LOG_LINE_CHARS
    assert long.endswith("[truncated]")


@given(st.integers(0, 10_000), st.integers(1, 1000))
def test_first_kept_seq_keeps_exactly_the_last_n(last: int, cap: int) -> None:
    first = first_kept_seq(last, cap)
    assert first >= 1
    assert last - first + 1 == min(last, cap) or last == 0
