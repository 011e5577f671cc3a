"""Log lines (perfgate.logs): one event per line in either format, with the same fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from perfgate.logs import JsonFormatter, TextFormatter, configure_logging, log_event


def _record(
    message: str = "job done", exc: BaseException | None = None, **fields: object
) -> logging.LogRecord:
    logger = logging.getLogger("perfgate.test")
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logger.makeRecord(
        "perfgate.test",
        logging.INFO,
        __file__,
        1,
        message,
        (),
        exc_info,
        extra={"perfgate_fields": fields},
    )
    record.created = 1_700_000_000.25
    record.msecs = 250.0
    return record


def _failure() -> ValueError:
    try:
        raise ValueError("bad\nthing")
    except ValueError as exc:
        return exc


def test_text_line_is_timestamp_level_logger_message_then_fields() -> None:
    line = TextFormatter().format(_record(job="j1", ms=3.5))
    assert line == "2023-11-14T22:13:20.250Z info perfgate.test job done job=j1 ms=3.5"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("two words", '"two words"'),
        ("a=b", '"a=b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("tab\there", '"tab\\there"'),
        ("", '""'),
        ("plain", "plain"),
        (None, "None"),
    ],
)
def test_text_values_are_quoted_when_they_would_split_the_line(value: object, shown: str) -> None:
    line = TextFormatter().format(_record(v=value))
    assert line.endswith(f" v={shown}")


def test_a_traceback_stays_on_the_one_line() -> None:
    text = TextFormatter().format(_record("failed", exc=_failure()))
    assert "\n" not in text
    assert " traceback=" in text
    folded = json.loads(text.split(" traceback=", 1)[1])
    assert "ValueError: bad" in folded


def test_json_line_has_the_same_fields_and_a_traceback() -> None:
    doc = json.loads(JsonFormatter().format(_record("failed", exc=_failure(), job="j1", n=2)))
    assert doc["ts"] == "2023-11-14T22:13:20.250Z"
    assert (doc["level"], doc["logger"], doc["msg"]) == ("info", "perfgate.test", "failed")
    assert (doc["job"], doc["n"]) == ("j1", 2)
    assert "ValueError: bad" in doc["traceback"]


def test_json_renders_what_json_cannot_carry_as_text() -> None:
    line = JsonFormatter().format(_record(where=io.StringIO))
    assert "\n" not in line
    assert json.loads(line)["where"] == str(io.StringIO)


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root")
def test_configure_twice_keeps_one_handler_and_the_last_format() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("text", "info", first)
    configure_logging("json", "debug", second)
    log_event(logging.getLogger("perfgate.x"), logging.DEBUG, "hello", job="j")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["job"] == "j"
    assert len([h for h in logging.getLogger().handlers if getattr(h, "_perfgate", False)]) == 1


@pytest.mark.usefixtures("restore_root")
def test_log_event_below_the_level_writes_nothing() -> None:
    out = io.StringIO()
    configure_logging("text", "warning", out)
    log_event(logging.getLogger("perfgate.x"), logging.INFO, "quiet", job="j")
    log_event(logging.getLogger("perfgate.x"), logging.WARNING, "loud", job="j")
    assert out.getvalue().count("\n") == 1
    assert "loud job=j" in out.getvalue()
