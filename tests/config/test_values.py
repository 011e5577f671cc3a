"""The configuration's value checks (perfgate.config._values): addresses, loopback, Redis
URLs, and the validators that name the key they refuse."""

from __future__ import annotations

import attrs
import pytest

from perfgate.config._values import (
    address,
    between,
    broker,
    cidrs,
    is_loopback,
    origins,
    parse_address,
    parse_redis_url,
    percent,
    positive,
    public_ws_url,
)
from perfgate.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:0", ("::1", 0)),
        ("example.com:65535", ("example.com", 65535)),
        ("0.0.0.0:1", ("0.0.0.0", 1)),
    ],
)
def test_addresses_split_into_host_and_port(text: str, parsed: tuple[str, int]) -> None:
    assert parse_address(text) == parsed


@pytest.mark.parametrize("text", ["8080", ":8080", "host:", "host:http", "host:65536", "host:-1"])
def test_a_bad_address_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_address(text)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("localhost.example.com", False),  # a name that must be resolved is not loopback
    ],
)
def test_loopback_is_a_literal_or_localhost(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("redis://h", ("h", 6379, 0)),
        ("redis://h:7000/3", ("h", 7000, 3)),
        ("redis://h:7000/", ("h", 7000, 0)),
    ],
)
def test_redis_urls(url: str, parsed: tuple[str, int, int]) -> None:
    assert parse_redis_url(url) == parsed


@pytest.mark.parametrize(
    "url",
    ["rediss://h", "redis://", "redis://h/x", "redis://u:p@h", "redis://h?db=1", "http://h"],
)
def test_unsupported_redis_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_redis_url(url)


@attrs.frozen
class Probe:
    bind: str = attrs.field(default="127.0.0.1:1", validator=address)
    broker: str = attrs.field(default="memory://", validator=broker)
    public: str = attrs.field(default="", validator=public_ws_url)
    proxies: tuple[str, ...] = attrs.field(default=(), validator=cidrs)
    allowed: tuple[str, ...] = attrs.field(default=(), validator=origins)
    share: float = attrs.field(default=50.0, validator=percent)
    rate: float = attrs.field(default=1.0, validator=positive)
    level: int = attrs.field(default=1, validator=between(1, 9))


def test_the_defaults_pass() -> None:
    Probe()
    Probe(public="/ws", proxies=("10.0.0.0/8", "::1"), allowed=("*", "https://a.example.com"))
    Probe(broker="redis://h:1/2", public="wss://host/ws", share=100, level=9)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bind", "nope"),
        ("broker", "redis://h/x"),
        ("broker", "kafka://h"),
        ("public", "ws://host"),  # a URL needs its path
        ("proxies", ("10.0.0.0/33",)),
        ("allowed", ("app.example.com",)),
        ("share", 0),
        ("share", 101),
        ("rate", 0),
        ("level", 10),
        ("level", 0),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        Probe(**{field: value})  # type: ignore[arg-type]
