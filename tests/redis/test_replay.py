import pytest

from perfgate.broker import Message
from perfgate.config import load_config, parse_redis_url
from perfgate.errors import ConfigError
from perfgate.redis.scripts.channels import (
    Backoff,
    Keys,
    decode_entries,
    decode_payload,
    replay_after,
)


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


def test_payload_round_trip() -> None:
    message = decode_payload("c", '7 high 12.5 {"a": "x y", "b": [1]}')
    assert (message.channel, message.offset, message.priority) == ("c", 7, "high")
    assert message.published_at == 12.5 and message.data == {"a": "x y", "b": [1]}
    entries = [["3-0", ["m", '3 normal 1.0 "s"']], ["4-0", ["m", "4 low 2.0 null"]]]
    assert [(m.offset, m.data) for m in decode_entries("c", entries)] == [(3, "s"), (4, None)]
    with pytest.raises(ValueError):
        decode_payload("c", "garbage")


def test_keys() -> None:
    keys = Keys("p:")
    assert keys.channel_of(keys.pubsub("jobs:abc")) == "jobs:abc"
    assert keys.channel_of("other:thing") is None
    assert keys.meta("c") != keys.history("c")


def test_backoff_doubles_to_a_cap_and_resets() -> None:
    backoff = Backoff(initial_s=0.1, max_s=0.5)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next() == 0.1


def test_redis_urls() -> None:
    assert parse_redis_url("redis://127.0.0.1:6380/2") == ("127.0.0.1", 6380, 2)
    assert parse_redis_url("redis://cache") == ("cache", 6379, 0)
    config = load_config(None, env={}, overrides={"server": {"broker": "redis://h:1/3"}})
    assert config.server.broker == "redis://h:1/3"
    for bad in ("redis://h:1/x", "amqp://h", "redis:///0", "redis://u:p@h/0"):
        with pytest.raises(ConfigError, match="broker"):
            load_config(None, env={}, overrides={"server": {"broker": bad}})
