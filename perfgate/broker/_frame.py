"""The one encoded form of a channel message: pure, no I/O.

A message is held once, as the complete WebSocket text frame that carries its ``message``
frame (RFC 6455 section 5.2, final and unmasked, no extension: what a server sends). A
fan-out writes these bytes as they are to every raw-frame connection; everything else (the
JSON text, the data, a ``batch`` frame) is derived from them when asked for. Holding the
data, the JSON and the frame side by side tripled what a retained message cost (issue 19:
400 messages of 64 KiB grew the server by 53 MiB).
"""

from __future__ import annotations

import json
import struct
from typing import Any

from perfgate.errors import ValidationError

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def encode_data(data: Any) -> str:
    """The compact JSON of ``data``; :class:`ValidationError` (422) if it is not JSON
    (NaN, Infinity, a lone surrogate, a non-JSON type), before any offset is given out."""
    try:
        text = _dumps(data)
        text.encode()  # a lone surrogate survives dumps(ensure_ascii=False), not this
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"data is not valid JSON: {exc}") from None
    return text


def message_wire(channel: str, offset: int, data_json: str) -> bytes:
    """The frame of ``{"type":"message","channel":C,"offset":N,"data":D}`` with ``D`` the
    already-encoded ``data_json``: byte for byte what encoding the whole object would give."""
    text = (
        '{"type":"message","channel":'
        + _dumps(channel)
        + ',"offset":'
        + str(offset)
        + ',"data":'
        + data_json
        + "}"
    )
    return websocket_frame(text.encode())


def websocket_frame(payload: bytes) -> bytes:
    """``payload`` (UTF-8 text) as one final, unmasked WebSocket text frame."""
    size = len(payload)
    if size <= 125:
        header = bytes((0x81, size))
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


def header_bytes(wire: bytes) -> int:
    """The length of the header of a frame built by :func:`websocket_frame`."""
    length = wire[1] & 0x7F
    return 2 if length <= 125 else 4 if length == 126 else 10


def batch_payload(payloads: list[memoryview]) -> bytes:
    """A ``batch`` frame's JSON from the messages' own JSON, without decoding them."""
    return b'{"type":"batch","messages":[' + b",".join(payloads) + b"]}"
