from hypothesis import given
from hypothesis import strategies as st

from perfgate.broker import ChannelHistory


def make(size: int = 5, ttl: float = 100.0) -> ChannelHistory:
    return ChannelHistory("c", "e1", size, ttl)


def test_offsets_increase_by_one_from_one() -> None:
    history = make()
    assert [history.append(i, "normal", 0.0).offset for i in range(3)] == [1, 2, 3]
    assert history.offset == 3


def test_since_replays_what_came_after() -> None:
    history = make()
    for i in range(4):
        history.append(i, "normal", 0.0)
    replay = history.since(1, "e1", 0.0)
    assert replay.recovered
    assert [m.offset for m in replay.messages] == [2, 3, 4]
    assert [m.data for m in replay.messages] == [1, 2, 3]


def test_since_at_head_is_recovered_and_empty() -> None:
    history = make()
    history.append("x", "normal", 0.0)
    replay = history.since(1, None, 0.0)
    assert replay.recovered and replay.messages == ()


def test_since_older_than_history_is_not_recovered() -> None:
    history = make(size=2)
    for i in range(5):
        history.append(i, "normal", 0.0)
    assert not history.since(2, "e1", 0.0).recovered
    assert history.since(3, "e1", 0.0).recovered


def test_foreign_epoch_or_future_offset_is_not_recovered() -> None:
    history = make()
    history.append("x", "normal", 0.0)
    assert not history.since(0, "other", 0.0).recovered
    assert not history.since(7, "e1", 0.0).recovered


def test_age_limit_evicts() -> None:
    history = make(ttl=10.0)
    history.append("old", "normal", 0.0)
    history.append("new", "normal", 8.0)
    replay = history.since(0, None, 12.0)
    assert not replay.recovered  # offset 1 aged out: a gap
    replay = history.since(1, None, 12.0)
    assert replay.recovered and [m.data for m in replay.messages] == ["new"]


def test_zero_history_keeps_offsets() -> None:
    history = make(size=0)
    history.append("a", "normal", 0.0)
    history.append("b", "normal", 0.0)
    assert len(history) == 0 and history.offset == 2
    assert not history.since(1, None, 0.0).recovered
    assert history.since(2, None, 0.0).recovered


@given(size=st.integers(0, 8), count=st.integers(0, 20), since=st.integers(0, 25))
def test_replay_is_contiguous_or_not_recovered(size: int, count: int, since: int) -> None:
    history = make(size=size)
    for i in range(count):
        history.append(i, "normal", 0.0)
    replay = history.since(since, None, 0.0)
    if replay.recovered:
        offsets = [m.offset for m in replay.messages]
        assert offsets == list(range(since + 1, count + 1))
    else:
        assert since > count or count - since > size
