"""The framed protocol between the pool and a worker process: pure, no I/O (sans-IO).

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON, always an
object. The pool writes frames to the worker's stdin and reads them from a private copy of the
worker's stdout; :class:`FrameDecoder` turns an arbitrary chunking of that byte stream back into
messages, so neither side cares how the pipe splits writes.

Messages, pool -> worker:
    ``{"op": "run", "job": ID, "target": "module:function", "args": {...}}``
Worker -> pool:
    ``{"ev": "ready", "pid": N}`` once, after start-up;
    ``{"ev": "progress", "fraction": F, "message": M}`` and ``{"ev": "log", "line": L}`` while a
    job runs; then exactly one ``{"ev": "done", "ok": true, "result": R, "rss_bytes": N}`` or
    ``{"ev": "done", "ok": false, "error": {...}, "traceback": T, "rss_bytes": N}``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

_HEADER = struct.Struct(">I")
_DECODER = json.JSONDecoder()
HEADER_BYTES = _HEADER.size
MAX_FRAME_BYTES = 64 * 1024 * 1024
"""A frame larger than this is a protocol error: it bounds what one bad message can allocate."""


class FrameError(Exception):
    """The byte stream is not a valid sequence of frames; the connection cannot continue."""


def encode_frame(message: Mapping[str, Any]) -> bytes:
    """Serialise one message. Raises ``TypeError``/``ValueError`` if it is not JSON-able."""
    # ensure_ascii=False: a lone surrogate (a task's result built from undecodable bytes)
    # fails here, in the worker, as a ValueError, instead of reaching the server as an
    # escape it could neither store nor send on (a str that is not UTF-8).
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    body = text.encode()
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    """Incremental decoder: feed bytes in any chunking, get whole messages out, in order."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max_frame_bytes = max_frame_bytes

    @property
    def pending_bytes(self) -> int:
        """Bytes received but not yet part of a complete frame (non-zero at EOF = truncated)."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray) -> list[dict[str, Any]]:
        """Add ``data``; return every message now complete. Raises :class:`FrameError`."""
        self._buffer += data
        messages: list[dict[str, Any]] = []
        offset = 0
        buffer = self._buffer
        while len(buffer) - offset >= HEADER_BYTES:
            (length,) = _HEADER.unpack_from(buffer, offset)
            if length > self._max_frame_bytes:
                raise FrameError(f"frame of {length} bytes exceeds {self._max_frame_bytes}")
            end = offset + HEADER_BYTES + length
            if len(buffer) < end:
                break
            try:
                # Decoding the UTF-8 ourselves skips json.loads's encoding sniffing: ~0.8 us
                # a frame, paid on both sides of every job. UnicodeDecodeError is a ValueError.
                message = _DECODER.decode(buffer[offset + HEADER_BYTES : end].decode())
            except ValueError as exc:
                raise FrameError(f"frame is not UTF-8 JSON: {exc}") from None
            if not isinstance(message, dict):
                raise FrameError(f"frame is not a JSON object: {type(message).__name__}")
            messages.append(message)
            offset = end
        if offset:
            del buffer[:offset]
        return messages
