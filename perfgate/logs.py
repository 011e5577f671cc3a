"""Logging: one line per event, human-readable by default, JSON lines with ``--log-format json``.

Call sites pass structured fields with :func:`log_event`; both formats render them, so the
text line is greppable (``key=value``) and the JSON line is machine-readable with the same keys.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import time
from typing import Any, TextIO

_FIELDS = "perfgate_fields"
#: The record attribute holding a line's fields (for a caller that builds its own record).
FIELDS_ATTRIBUTE = _FIELDS
#: What makes a text value need quoting (``\s`` is ``str.isspace``); one regex search per
#: value instead of a generator over its characters.
_NEEDS_QUOTES = re.compile(r'[\s"=]')


def log_event(
    logger: logging.Logger,
    level: int,
    message: str,
    *,
    exc_info: BaseException | None = None,
    **fields: Any,
) -> None:
    """Log ``message`` with structured ``fields`` (rendered as ``key=value`` or JSON keys)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, exc_info=exc_info, extra={_FIELDS: fields})


@functools.lru_cache(maxsize=4)
def _utc_second(epoch_s: int) -> str:
    # Lines come many to a second: format each second once.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s))


def _timestamp(record: logging.LogRecord) -> str:
    return f"{_utc_second(int(record.created))}.{int(record.msecs):03d}Z"


def _text_value(value: Any) -> str:
    kind = type(value)
    if kind is int or kind is float:  # never empty, never a space or quote (nan, inf too)
        return repr(value)
    text = str(value)
    if not text or _NEEDS_QUOTES.search(text):
        return json.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, _FIELDS, {})
        parts = [_timestamp(record), record.levelname.lower(), record.name, record.getMessage()]
        parts.extend(f"{k}={_text_value(v)}" for k, v in fields.items())
        line = " ".join(parts)
        if record.exc_info:
            # Keep one event on one line: the traceback is folded into an escaped field.
            line += " traceback=" + json.dumps(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(getattr(record, _FIELDS, {}))
        if record.exc_info:
            doc["traceback"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


def configure_logging(fmt: str = "text", level: str = "info", stream: TextIO | None = None) -> None:
    """Install one handler on the root logger (idempotent: replaces an earlier one)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_perfgate", False):
            root.removeHandler(old)
    handler._perfgate = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Neither format shows a record's thread or process: do not look them up for each line
    # (an os.getpid() system call, a current_thread() and a multiprocessing lookup per
    # record, the access line included). The logging HOWTO's "Optimization" switches.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Hypercorn logs "Running on ..." itself; our supervisor says it once, in our format.
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)
