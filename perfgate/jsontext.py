"""Strict JSON: the one place where text from a client becomes a value. Pure.

Python's :mod:`json` reads more than JSON can carry back out: ``NaN`` and ``Infinity``
(and ``1e999``, which becomes ``inf``), and ``"\\ud800"``, an escape of a lone surrogate that
is not a character and cannot be written as UTF-8. Each slipped past the entry points once
(issue 19.7): a ``NaN`` published over WebSocket was acked with an offset and then could not
be encoded for any subscriber; a lone surrogate in a job's arguments or idempotency key
answered 500 while it was fingerprinted. :func:`loads` refuses all of them, and nesting
deeper than :data:`MAX_DEPTH`, so a value it returns can always be encoded as strict UTF-8
JSON again. Every client body (HTTP) and frame (WebSocket) is parsed with it, before an
offset is allocated or a job is written.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
"""Containers nested deeper than this are refused: every consumer walks values recursively."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonTextError(ValueError):
    """The text is not strict JSON. ``path`` names where (``""``: the text as a whole)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = path


def _refuse_constant(name: str) -> Any:
    raise JsonTextError(f"{name} is not JSON (numbers must be finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonTextError(f"number {text[:32]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode ``text`` (bytes must be UTF-8) as strict JSON.

    Raises :class:`JsonTextError` for text that is not UTF-8 or not JSON, for ``NaN``,
    ``Infinity`` and numbers that overflow to them, for a lone surrogate anywhere (in a key
    or a value, at any depth), and for nesting deeper than ``max_depth``.
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise JsonTextError("not UTF-8") from None
    try:
        value = _DECODER.decode(text)
    except JsonTextError:
        raise
    except RecursionError:
        raise JsonTextError(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise JsonTextError(f"malformed JSON: {exc}") from None
    # The walk is only needed when the text could hold what it looks for: a surrogate
    # (escaped, or raw in a str the caller built) or more brackets than the depth allows.
    # Most frames have neither, and two C-speed scans are cheaper than a walk in Python.
    if (
        _SURROGATE_ESCAPE.search(text) is not None
        or _SURROGATE.search(text) is not None
        or text.count("[") + text.count("{") > max_depth
    ):
        check_value(value, max_depth=max_depth)
    return value


def check_value(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`JsonTextError` unless ``value`` encodes as strict UTF-8 JSON.

    Accepts what :func:`json.loads` produces (dict with str keys, list, str, int, float,
    bool, None); refuses non-finite floats, lone surrogates, other types, and nesting deeper
    than ``max_depth``. The error's ``path`` names the first bad place (``args.files[2]``).
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise JsonTextError("a string holds a lone surrogate (not UTF-8)", path)
        elif isinstance(item, bool | int) or item is None:
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise JsonTextError("numbers must be finite", path)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise JsonTextError(f"nested deeper than {max_depth} levels", path)
            if isinstance(item, list):
                stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item))
                continue
            for key, child in item.items():
                if not isinstance(key, str):
                    raise JsonTextError("object keys must be strings", path)
                if _SURROGATE.search(key):
                    raise JsonTextError("a key holds a lone surrogate (not UTF-8)", path)
                stack.append((child, f"{path}.{key}" if path else key, depth + 1))
        else:
            raise JsonTextError(f"{type(item).__name__} is not a JSON value", path)


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"
