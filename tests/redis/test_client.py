"""The Redis connection's pure parts: reconnect back-off, URLs, failures (perfgate.redis.client)."""

import pytest

from perfgate.config import load_config, parse_redis_url
from perfgate.errors import ConfigError, Unavailable
from perfgate.redis.client import Backoff, redis_unavailable


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


def test_a_lost_connection_is_unavailable_and_other_errors_pass() -> None:
    with (
        pytest.raises(Unavailable, match="get job: redis unavailable"),
        redis_unavailable("get job"),
    ):
        raise ExceptionGroup("lost", [ConnectionResetError(), TimeoutError()])
    with pytest.raises(ValueError), redis_unavailable("get job"):
        raise ValueError("a bug, not an outage")
    with pytest.raises(ExceptionGroup), redis_unavailable("get job"):
        raise ExceptionGroup("mixed", [OSError(), ValueError()])
