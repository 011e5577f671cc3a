"""Reading request bodies: 415 for non-JSON, 413 over the limit (while reading), 400 if malformed."""

from __future__ import annotations

from typing import Any

from quart import request

from perfgate import jsontext
from perfgate.errors import BadRequest, UnsupportedMediaType


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_json() -> Any:
    """The decoded JSON body. Quart enforces ``max_body_bytes`` as it reads (413 early).

    Strict (:func:`perfgate.jsontext.loads`): NaN, infinities, lone surrogates and deep
    nesting are a 400 naming where they are, so nothing downstream meets a value it cannot
    encode again.
    """
    if not _is_json(request.headers.get("Content-Type")):
        raise UnsupportedMediaType("send the body as application/json")
    raw = await request.get_data(as_text=False)
    assert isinstance(raw, bytes)
    if not raw.strip():
        raise BadRequest("the body is empty; expected a JSON object")
    try:
        return jsontext.loads(raw)
    except jsontext.JsonTextError as exc:
        if not exc.path:
            raise BadRequest(f"the body is not valid JSON: {exc.message}") from None
        raise BadRequest(
            f"the body is not valid JSON at {exc.path}: {exc.message}",
            errors=[{"field": exc.path, "message": exc.message}],
        ) from None
