"""The drain plan: every connection closed within the window, in spread batches (perfgate.gateway.limits)."""

from hypothesis import given
from hypothesis import strategies as st

from perfgate.gateway.limits import drain_schedule


@given(n=st.integers(0, 20000), window=st.floats(0.0, 120.0))
def test_drain_schedule_closes_everyone_within_the_window(n: int, window: float) -> None:
    plan = drain_schedule(n, window)
    assert sum(count for _, count in plan) == n
    offsets = [offset for offset, _ in plan]
    assert offsets == sorted(offsets)
    assert all(0 <= offset <= window * 0.8 + 1e-9 for offset in offsets)
    if len(plan) > 1:
        assert offsets[1] - offsets[0] >= 0.05 - 1e-9


def test_drain_schedule_spreads_batches() -> None:
    plan = drain_schedule(1000, 10.0)
    assert len(plan) > 10
    assert max(count for _, count in plan) < 100
