"""Value checks the configuration sections share: attrs validators, and the parsers of
addresses and broker URLs (also used where a value is read, e.g. the bind of a listener).

Validators check *values*; the loader (:mod:`perfgate.config._load`) checks *shape*.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

import attrs

from perfgate.errors import ConfigError

# Whole-string patterns are used with fullmatch: "$" would also match before a final newline.
_ORIGIN = re.compile(r"https?://[^/\s]+")
_PORT = re.compile(r"[0-9]{1,5}")
_DB = re.compile(r"[0-9]{1,9}")


def positive(_inst: Any, attr: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{attr.name}: must be > 0, got {value!r}")


def non_negative(_inst: Any, attr: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ConfigError(f"{attr.name}: must be >= 0, got {value!r}")


def optional(check: Any) -> Any:
    def maybe(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            check(inst, attr, value)

    return maybe


def at_least(minimum: int) -> Any:
    def check(_inst: Any, attr: attrs.Attribute[Any], value: int) -> None:
        if value < minimum:
            raise ConfigError(f"{attr.name}: must be >= {minimum}, got {value!r}")

    return check


def between(minimum: int, maximum: int) -> Any:
    def check(_inst: Any, attr: attrs.Attribute[Any], value: int) -> None:
        if not minimum <= value <= maximum:
            raise ConfigError(
                f"{attr.name}: must be between {minimum} and {maximum}, got {value!r}"
            )

    return check


def percent(_inst: Any, attr: attrs.Attribute[Any], value: float) -> None:
    if not 0 < value <= 100:
        raise ConfigError(f"{attr.name}: must be a percentage in (0, 100], got {value!r}")


def parse_address(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` for IPv6). Port 0 means "pick a free port"."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not _PORT.fullmatch(port_text):
        raise ConfigError(f"expected HOST:PORT, got {value!r}")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(f"port out of range in {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def is_loopback(host: str) -> bool:
    """True for a loopback literal or ``localhost``; a name that must be resolved is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address(_inst: Any, attr: attrs.Attribute[Any], value: str) -> None:
    try:
        parse_address(value)
    except ConfigError as exc:
        raise ConfigError(f"{attr.name}: {exc.message}") from None


def public_ws_url(_inst: Any, attr: attrs.Attribute[Any], value: str) -> None:
    if value and not re.fullmatch(r"(wss?://[^/\s]+)?/\S*", value):
        raise ConfigError(
            f"{attr.name}: expected '', a path like '/ws' or a URL like 'wss://host/ws', "
            f"got {value!r}"
        )


def cidrs(_inst: Any, attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{attr.name}: not a CIDR or IP address: {item!r}") from None


def origins(_inst: Any, attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for item in value:
        if item != "*" and not _ORIGIN.fullmatch(item):
            raise ConfigError(
                f"{attr.name}: expected an origin like 'https://app.example.com' or '*', "
                f"got {item!r}"
            )


def parse_redis_url(url: str) -> tuple[str, int, int]:
    """``redis://HOST[:PORT][/N]`` → ``(host, port, db)``; raises ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError("expected redis://HOST:PORT/N")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("query, fragment and credentials are not supported")
    port = parts.port if parts.port is not None else 6379
    path = parts.path.strip("/")
    if path and not _DB.fullmatch(path):
        raise ValueError(f"database must be a number, got {path!r}")
    return parts.hostname, port, int(path or 0)


def broker(_inst: Any, attr: attrs.Attribute[Any], value: str) -> None:
    # Refusing a URL we cannot serve beats silently running single-instance.
    if value == "memory://":
        return
    try:
        parse_redis_url(value)
    except ValueError as exc:
        raise ConfigError(
            f"{attr.name}: expected 'memory://' or 'redis://HOST:PORT/N', got {value!r} ({exc})"
        ) from None
