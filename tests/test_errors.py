"""The error hierarchy (perfgate.errors): each class carries its own status and a code no
other class uses, so the two mappings (HTTP problems, WebSocket frames) need no ladder."""

from __future__ import annotations

import pytest

from perfgate import errors
from perfgate.errors import (
    WS_CLOSE_CODES,
    PerfgateError,
    QueueFull,
    RateLimited,
    TooManyChannels,
    Unavailable,
    ValidationError,
)


def _all_errors() -> list[type[PerfgateError]]:
    found: list[type[PerfgateError]] = []
    todo = [PerfgateError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    # Only perfgate's own (tests or other modules may subclass them).
    return [cls for cls in found if cls.__module__ == errors.__name__]


def test_every_error_has_its_own_code() -> None:
    codes = [cls.code for cls in _all_errors()]
    assert len(codes) == len(set(codes)), codes


@pytest.mark.parametrize("cls", _all_errors(), ids=lambda cls: cls.__name__)
def test_every_error_is_a_client_or_server_error_with_a_title(cls: type[PerfgateError]) -> None:
    assert 400 <= cls.status <= 599
    assert cls.title
    assert cls.code.isidentifier()


def test_the_message_and_extra_fields_are_kept() -> None:
    error = ValidationError("args.n must be an integer", field="args.n")
    assert str(error) == error.message == "args.n must be an integer"
    assert error.extra == {"field": "args.n"}
    assert (error.status, error.code) == (422, "invalid")


def test_back_pressure_errors_say_when_to_come_back() -> None:
    full = QueueFull("queue full", retry_after_s=2.5, depth=10)
    assert isinstance(full, RateLimited)
    assert (full.status, full.code, full.retry_after_s) == (429, "queue_full", 2.5)
    assert full.extra == {"depth": 10}
    assert Unavailable("starting").retry_after_s == 1.0
    channels = TooManyChannels("full", retry_after_s=5)
    assert (channels.status, channels.code, channels.retry_after_s) == (503, "too_many_channels", 5)


def test_close_codes_are_ones_a_server_may_send() -> None:
    # RFC 6455 §7.4: 1005, 1006 and 1015 never go on the wire; 4000-4999 are private use.
    for reason, code in WS_CLOSE_CODES.items():
        assert code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011) or (
            4000 <= code <= 4999
        ), reason
        assert len(reason.encode()) <= 123  # a close frame's reason fits in 125 bytes
    assert len(set(WS_CLOSE_CODES.values())) == len(WS_CLOSE_CODES)


def test_the_close_code_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        WS_CLOSE_CODES["slow consumer"] = 1000  # type: ignore[index]
