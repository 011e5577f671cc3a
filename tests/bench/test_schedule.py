"""The open-loop schedule and run ordering (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfgate.bench.schedule import (
    Schedule,
    achieved_rate,
    interleave,
    is_valid,
    lag_growth,
    split_for_workers,
)


def test_intended_times_are_evenly_spaced_from_the_start() -> None:
    s = Schedule(rate_per_s=100.0, duration_s=2.0, start_s=50.0)
    times = [t for _, t in s]
    assert len(times) == 200
    assert times[0] == 50.0
    assert times[1] - times[0] == pytest.approx(0.01)
    assert times[-1] == pytest.approx(50.0 + 1.99)


@given(
    rate=st.floats(1.0, 500.0),
    duration=st.floats(0.5, 5.0),
    parts=st.integers(1, 4),
    workers=st.integers(1, 6),
)
def test_parts_and_workers_partition_the_slots(
    rate: float, duration: float, parts: int, workers: int
) -> None:
    whole = Schedule(rate, duration)
    seen: list[int] = []
    for k in range(parts):
        for w in split_for_workers(Schedule(rate, duration, part=k, parts=parts), workers):
            seqs = [seq for seq, _ in w]
            assert seqs == sorted(seqs)
            seen.extend(seqs)
            # every worker's slot keeps the global intended time
            assert all(t == whole.intended_s(seq) for seq, t in w)
    assert sorted(seen) == list(range(whole.total_slots))


def test_part_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        Schedule(10.0, 1.0, part=2, parts=2)


def test_a_generator_that_keeps_up_achieves_the_offered_rate() -> None:
    growth = lag_growth(0.001, 0.001, 3.0)
    assert growth == 0.0
    assert achieved_rate(100.0, sent=300, scheduled=300, growth=growth) == 100.0


def test_a_generator_at_half_speed_achieves_half() -> None:
    # at half speed a send falls behind by one interval per interval: lag grows 1 s per s;
    # the quarter centres are 2.25 s apart on a 3 s schedule
    growth = lag_growth(0.375, 0.375 + 2.25, 3.0)
    assert growth == pytest.approx(1.0)
    assert achieved_rate(100.0, 300, 300, growth) == pytest.approx(50.0)
    assert not is_valid(50.0, 100.0)


def test_unsent_requests_lower_the_achieved_rate() -> None:
    assert achieved_rate(100.0, sent=270, scheduled=300, growth=0.0) == pytest.approx(90.0)


def test_catching_up_is_not_extra_rate() -> None:
    assert lag_growth(0.5, 0.0, 3.0) == 0.0


def test_validity_threshold_is_99_percent() -> None:
    assert is_valid(99.0, 100.0)
    assert not is_valid(98.9, 100.0)


def test_interleave_is_abba() -> None:
    assert [s for _, s in interleave(["A", "B"], 4)] == list("ABBAABBA")
    assert [s for _, s in interleave(["A", "B", "C"], 2)] == list("ABCCBA")
    assert [r for r, _ in interleave(["A", "B"], 2)] == [0, 0, 1, 1]
