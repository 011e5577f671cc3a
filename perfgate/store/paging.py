"""Opaque cursors for keyset pagination over ``(created_at, id)``.

Pure: no I/O. A cursor names the last job of a page; the next page holds the jobs strictly
after it in the list order. Keyset (not offset) pagination is what keeps pages stable while
jobs are inserted or deleted: no job is shown twice and no job that existed when the listing
began is skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import math

from perfgate.errors import BadRequest

_VERSION = 1


def encode_cursor(created_at: float, job_id: str) -> str:
    """An opaque, URL-safe token for the position just after ``(created_at, job_id)``."""
    raw = json.dumps([_VERSION, created_at, job_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The position a cursor names. Raises :class:`~perfgate.errors.BadRequest` for a token
    this module did not make (bad base64, bad JSON, wrong shape or version)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
        version, created_at, job_id = json.loads(raw)
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise BadRequest("invalid cursor") from None
    if (
        version != _VERSION
        or not isinstance(created_at, int | float)
        or isinstance(created_at, bool)
        or not math.isfinite(created_at)
        or not isinstance(job_id, str)
    ):
        raise BadRequest("invalid cursor")
    return float(created_at), job_id
