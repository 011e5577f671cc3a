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


def test_achieved_rate_counts_sends_in_the_window() -> None:
    assert achieved_rate(300, 3.0) == pytest.approx(100.0)
    # a generator at half speed got only 150 of its 300 sends out within the window
    assert achieved_rate(150, 3.0) == pytest.approx(50.0)
    assert not is_valid(50.0, 100.0)


def test_validity_threshold_is_99_percent() -> None:
    assert is_valid(99.0, 100.0)
    assert not is_valid(98.9, 100.0)


def test_interleave_is_abba() -> None:
    assert [s for _, s in interleave(["A", "B"], 4)] == list("ABBAABBA")
    assert [s for _, s in interleave(["A", "B", "C"], 2)] == list("ABCCBA")
    assert [r for r, _ in interleave(["A", "B"], 2)] == [0, 0, 1, 1]
