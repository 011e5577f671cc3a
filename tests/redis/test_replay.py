"""The replay a Redis subscriber gets (pure: perfgate.redis.replay)."""

from perfgate.broker import Message
from perfgate.redis.replay import MIN_CHANNEL_TTL_S, channel_ttl_s, replay_after


def _messages(*offsets: int, at: float = 100.0) -> list[Message]:
    return [Message("c", o, {"n": o}, "normal", at) for o in offsets]


def _replay(since, epoch="e1", retained=(), offset=5, now=100.0):
    return replay_after(
        since=since,
        epoch=epoch,
        channel_epoch="e1",
        channel_offset=offset,
        retained=list(retained),
        now=now,
        history_ttl_s=60.0,
    )


def test_replay_rules() -> None:
    assert _replay(None).recovered and _replay(None).messages == ()
    assert not _replay(2, epoch="other").recovered
    assert not _replay(6).recovered  # ahead of the channel
    assert not _replay(-1).recovered
    assert _replay(5).recovered and _replay(5).messages == ()
    full = _replay(2, retained=_messages(3, 4, 5))
    assert full.recovered and [m.offset for m in full.messages] == [3, 4, 5]
    assert _replay(2, epoch=None, retained=_messages(3, 4, 5)).recovered
    assert not _replay(1, retained=_messages(3, 4, 5)).recovered  # 2 was trimmed
    expired = _messages(3, at=10.0) + _messages(4, 5)
    assert not _replay(2, retained=expired).recovered  # 3 is older than the TTL
    assert [m.offset for m in _replay(3, retained=expired).messages] == [4, 5]


def test_a_channel_outlives_its_history() -> None:
    assert channel_ttl_s(60.0) == MIN_CHANNEL_TTL_S
    assert channel_ttl_s(3 * MIN_CHANNEL_TTL_S) == 6 * MIN_CHANNEL_TTL_S
