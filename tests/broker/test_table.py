"""The channel table's bounds and sweep (pure, time passed in): issue 19 item 5."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfgate.broker._history import MESSAGE_OVERHEAD_BYTES, Message
from perfgate.broker._table import ChannelTable, HistoryLimits
from perfgate.errors import TooManyChannels, ValidationError

BIG = "x" * 65_536
NOBODY: frozenset[str] = frozenset()


def table(**limits: float) -> ChannelTable:
    return ChannelTable(HistoryLimits(**limits), "boot")  # type: ignore[arg-type]


def test_one_off_channels_leave_nothing_once_their_history_expires() -> None:
    t = table(ttl_s=10.0)
    for i in range(10_000):
        t.append(f"once:{i}", {"i": i}, "normal", float(i % 5), NOBODY)
    assert len(t) == 10_000
    assert t.sweep(9.0, NOBODY) == 0  # nothing is older than 10 s yet
    assert t.sweep(20.0, NOBODY) == 10_000
    assert len(t) == 0 and t.retained_bytes == 0 and t.retained_messages() == 0


def test_the_sweep_keeps_subscribed_and_live_channels() -> None:
    t = table(ttl_s=10.0)
    t.append("watched", 1, "normal", 0.0, NOBODY)
    t.append("old", 1, "normal", 0.0, NOBODY)
    t.append("fresh", 1, "normal", 15.0, NOBODY)
    t.sweep(12.0, {"watched"})
    assert "watched" in t and "old" not in t and "fresh" in t
    assert t.retained_messages() == 1  # watched's message expired; the channel stays


def test_per_channel_byte_bound_holds_with_large_messages() -> None:
    t = table(channel_bytes=1_048_576, size=1000)
    for i in range(400):
        t.append("big", BIG + str(i), "normal", 0.0, NOBODY)
    history = t.get("big")
    assert history is not None and history.offset == 400
    assert 0 < history.retained_bytes <= 1_048_576
    assert t.retained_bytes == history.retained_bytes
    # What is retained is the newest, contiguous, and a replay of it is recovered.
    kept = len(history)
    replay = t.replay("big", 400 - kept, None, 0.0)
    assert replay.recovered and [m.offset for m in replay.messages] == list(range(401 - kept, 401))
    assert not t.replay("big", 399 - kept, None, 0.0).recovered


def test_a_message_over_the_channel_bound_is_delivered_not_kept() -> None:
    t = table(channel_bytes=1000)
    message = t.append("c", BIG, "normal", 0.0, {"c"})
    assert message.offset == 1 and message.data == BIG
    assert t.retained_bytes == 0 and not t.replay("c", 0, None, 0.0).recovered


def test_total_byte_bound_evicts_least_recently_published_first() -> None:
    t = table(channel_bytes=10 * 1_048_576, total_bytes=1_048_576)
    for i in range(40):
        t.append(f"c{i % 4}", BIG, "normal", 0.0, NOBODY)
    assert t.retained_bytes <= 1_048_576
    last = t.get("c3")
    assert last is not None and len(last) > 0  # the most recent publish survived
    assert t.retained_bytes == sum(
        h.retained_bytes for h in (t.get(f"c{i}") for i in range(4)) if h is not None
    )


def test_the_channel_cap_refuses_new_channels_after_a_sweep_fails_to_make_room() -> None:
    t = table(max_channels=3, ttl_s=10.0)
    for name in ("a", "b", "c"):
        t.append(name, 1, "normal", 0.0, NOBODY)
    with pytest.raises(TooManyChannels, match=r"max_channels \(3\)") as info:
        t.append("d", 1, "normal", 1.0, NOBODY)
    assert info.value.status == 503 and info.value.retry_after_s > 0
    with pytest.raises(TooManyChannels):
        t.open("d", 1.0, NOBODY)  # a subscribe is capped the same way
    assert "d" not in t and t.refused == 2
    t.append("a", 2, "normal", 1.0, NOBODY)  # an existing channel is never refused
    t.append("jobs:1", 1, "normal", 1.0, NOBODY, capped=False)  # the server's own
    # Once the others expire, the cap makes room by sweeping, without waiting for the timer.
    t.append("e", 1, "normal", 20.0, NOBODY)
    assert "e" in t and "b" not in t


def test_a_forgotten_channel_comes_back_under_a_new_epoch() -> None:
    t = table(ttl_s=10.0)
    for i in range(3):
        t.append("room", i, "normal", 0.0, NOBODY)
    old = t.replay("room", 3, None, 0.0)
    assert old.recovered and old.epoch
    t.sweep(20.0, NOBODY)
    assert "room" not in t
    t.append("room", "again", "normal", 21.0, NOBODY)
    t.append("room", "and again", "normal", 21.0, NOBODY)
    again = t.replay("room", 1, old.epoch, 21.0)
    assert again.epoch != old.epoch and not again.recovered


def test_data_that_is_not_json_uses_no_offset_and_creates_no_channel() -> None:
    t = table()
    for bad in (float("nan"), "\ud800", {1j}):
        with pytest.raises(ValidationError):
            t.append("c", bad, "normal", 0.0, NOBODY)
    assert "c" not in t
    assert t.append("c", 1, "normal", 0.0, NOBODY).offset == 1


@given(
    sizes=st.lists(st.integers(0, 5_000), max_size=60),
    channel_bytes=st.integers(1, 20_000),
    total_bytes=st.integers(1, 40_000),
)
def test_bytes_are_accounted_exactly(
    sizes: list[int], channel_bytes: int, total_bytes: int
) -> None:
    t = table(channel_bytes=channel_bytes, total_bytes=total_bytes, ttl_s=5.0)
    for i, size in enumerate(sizes):
        t.append(f"c{i % 3}", "y" * size, "normal", float(i), NOBODY)
        held = [t.get(f"c{k}") for k in range(3)]
        total = sum(h.retained_bytes for h in held if h is not None)
        assert t.retained_bytes == total <= total_bytes
        assert all(h is None or h.retained_bytes <= channel_bytes for h in held)
    t.sweep(len(sizes) + 10.0, NOBODY)
    assert len(t) == 0 and t.retained_bytes == 0


def test_a_retained_message_costs_its_frame_once() -> None:
    message = Message("c", 1, BIG, "normal", 0.0)
    assert len(message.wire) - message.size_bytes <= 10  # the WebSocket header
    assert message.size_bytes == len(BIG) + len(
        '{"type":"message","channel":"c","offset":1,"data":""}'
    )
    assert MESSAGE_OVERHEAD_BYTES > 0
