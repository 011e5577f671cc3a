"""Reading request bodies: 415 for non-JSON, 413 over the limit (while reading), 400 if malformed."""

from __future__ import annotations

import json
from typing import Any

from quart import request

from perfgate.errors import BadRequest, UnsupportedMediaType

MAX_JSON_DEPTH = 64


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json() -> Any:
    """The decoded JSON body. Quart enforces ``max_body_bytes`` as it reads (413 early)."""
    if not _is_json(request.headers.get("Content-Type")):
        raise UnsupportedMediaType("send the body as application/json")
    raw = await request.get_data(as_text=False)
    assert isinstance(raw, bytes)
    if not raw.strip():
        raise BadRequest("the body is empty; expected a JSON object")
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    except RecursionError:
        raise BadRequest("the JSON body is nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise BadRequest(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest
