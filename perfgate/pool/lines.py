"""Split a byte stream into bounded text lines (command stdout/stderr). Pure.

A line longer than ``max_line_bytes`` is cut into pieces of that many bytes, so one process that
never writes a newline cannot make the pool buffer without bound.
"""

from __future__ import annotations


class LineSplitter:
    def __init__(self, max_line_bytes: int) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be >= 1")
        self._max_bytes = max_line_bytes
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray) -> list[str]:
        """Add ``data``; return the lines now complete, without their line endings."""
        self._buffer += data
        lines: list[str] = []
        while True:
            newline = self._buffer.find(b"\n", 0, self._max_bytes + 1)
            if newline >= 0:
                lines.append(self._decode(self._buffer[:newline]))
                del self._buffer[: newline + 1]
            elif len(self._buffer) > self._max_bytes:
                lines.append(self._decode(self._buffer[: self._max_bytes]))
                del self._buffer[: self._max_bytes]
            else:
                return lines

    def flush(self) -> list[str]:
        """At end of stream: the unterminated last line, if any."""
        if not self._buffer:
            return []
        line = self._decode(self._buffer)
        self._buffer.clear()
        return [line]

    @staticmethod
    def _decode(raw: bytes | bytearray) -> str:
        return bytes(raw).rstrip(b"\r").decode("utf-8", errors="replace")
