"""The shared queue's length as one instance counts it between samples (pure)."""

from hypothesis import given
from hypothesis import strategies as st

from perfgate.redis.queue import BacklogCount


def test_accepts_made_before_a_sample_stay_counted_while_it_reads() -> None:
    count = BacklogCount()
    count.end(4, count.begin())
    count.accepted += 1  # a submit, appended to a stream
    seen = count.begin()  # the sample's reads start, and take a while
    assert count.total == 5  # still counted while they run (was: 4, one submit too many)
    count.accepted += 1  # a submit during the reads
    count.end(5, seen)  # the reads saw the first, perhaps not the second
    assert count.total == 6


@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=30))
def test_the_count_never_falls_below_the_streams(steps: list[tuple[int, bool]]) -> None:
    """Whatever the interleaving of accepts and samples, the count is at least the entries
    really in the streams (entries only added here: nothing finishes)."""
    count, streams = BacklogCount(), 0
    for accepts_before, during in steps:
        for _ in range(accepts_before):
            streams += 1
            count.accepted += 1
            assert count.total >= streams
        seen = count.begin()
        read = streams
        if during:  # an accept lands after the read, before the sample ends
            streams += 1
            count.accepted += 1
        assert count.total >= streams
        count.end(read, seen)
        assert count.total >= streams
