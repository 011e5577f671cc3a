"""The TCP stream under one WebSocket: every byte the gateway sends passes here.

trio-websocket writes the handshake answer, pongs, pings and close frames through
``send_all`` of the stream it was given; the gateway gives it a :class:`GatewayStream`, and
writes its own frames (messages, acks, batches) through the same object. So one object,
which the gateway owns, orders every write to the socket, and it keeps frames whole: bytes
it has accepted go out in the order accepted, and a write that the kernel took only in part
leaves its rest in the stream's own buffer, ahead of anything written later. No other
library's lock or state is touched (issue 16.1: the previous fast path took trio-websocket's
stream lock on another task's behalf by assigning trio's private ``Lock._owner``).

The fast path relies on three things, each observed here rather than read from another
library's internals, and pinned by ``tests/gateway/test_wire.py`` for the versions in
``pyproject.toml``:

- each ``send_all`` call from trio-websocket starts at a frame boundary (it sends one wsproto
  event per call), so a close frame is recognised by its first byte (``0x88``);
- the handshake answer passes through ``send_all``: the stream reads it to learn whether an
  extension (compression) was negotiated, in which case the gateway's own frames (built by
  :func:`~perfgate.gateway.outbox.websocket_frame`) would be wrong, and it falls back to
  trio-websocket's public ``send_message``;
- a server's frames are unmasked, so the gateway can build them once per fan-out.

Most writes to a healthy peer are taken by the kernel at once; :meth:`GatewayStream.write_nowait`
then writes a whole frame from synchronous code (a publisher's fan-out) without waking the
connection's writer task: the asyncio transport's strategy. Anything else waits in the
stream's buffer for the task that drains it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Coroutine
from typing import Any

import trio

#: Close codes wsproto reports for a frame it could not parse (protocol error, invalid UTF-8,
#: too big): trio-websocket records them but sends no close frame (see GatewayStream).
PARSE_FAILURE_CODES = frozenset({1002, 1007, 1009})

_CLOSE_FRAME_START = 0x88  # FIN + opcode 8: a close frame is never fragmented


def close_frame(code: int, reason: str = "") -> bytes:
    """A server's (unmasked) close frame: RFC 6455 §5.5.1, the reason cut to fit 125 bytes."""
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")[:123]
    return bytes((_CLOSE_FRAME_START, len(payload))) + payload


def negotiated_extension(response: bytes) -> bool | None:
    """Whether the handshake answer ``response`` (the bytes of an HTTP response) accepts the
    upgrade with an extension: None if it is no 101 answer, else True/False. Pure."""
    head, _, _ = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 101"):
        return None
    return any(line.lower().startswith(b"sec-websocket-extensions:") for line in lines[1:])


class GatewayStream(trio.abc.Stream):
    """The stream trio-websocket is given for one connection: a SocketStream, a write buffer
    the gateway owns, and last words.

    Writers are trio-websocket (through :meth:`send_all`, under its own lock), the
    connection's writer task (:meth:`send_all`, :meth:`flush`) and publishers
    (:meth:`write_nowait`, synchronous). One of them at a time *drains*: it holds the
    socket until the buffer is empty; the others append whole frames behind it and wait.

    When wsproto cannot parse a frame (invalid UTF-8 in a text frame: 1007; a protocol
    error: 1002), trio-websocket 0.12 records the close code and closes the TCP connection
    without the close frame RFC 6455 §7.1.7 requires, so the client sees an abnormal
    closure and never learns why (issue 19.9). ``last_words`` is asked, as the stream
    closes, for bytes to write first; :meth:`failure_close_frame` is the one used.
    """

    __slots__ = (
        "_drained",
        "_draining",
        "_pending",
        "broken",
        "close_sent",
        "last_words",
        "plain",
        "transport",
    )

    def __init__(self, transport: trio.SocketStream) -> None:
        self.transport = transport
        self.last_words: Callable[[], bytes | None] | None = None
        #: Bytes accepted and not yet taken by the kernel, in order (the gateway's own).
        self._pending = b""
        self._draining = False
        self._drained: trio.lowlevel.ParkingLot | None = None  # made on first contention
        #: A write was cancelled or failed halfway: the byte stream is cut mid-frame.
        self.broken = False
        #: A close frame has gone into the buffer: no data frame may follow it.
        self.close_sent = False
        #: The handshake answer negotiated no extension: the gateway's own frames are valid.
        self.plain = False

    # -- state ---------------------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)

    @property
    def idle(self) -> bool:
        """Nothing buffered and nobody writing: a frame written now goes straight out."""
        return not self._pending and not self._draining

    def failure_close_frame(self, closed_code: int | None, reason: str | None) -> bytes | None:
        """The close frame trio-websocket owes the peer, if any: the connection was closed
        (``closed_code``) for a frame wsproto could not parse, no close frame was sent, and
        the socket is between frames (nothing buffered, no write in flight)."""
        if closed_code not in PARSE_FAILURE_CODES or self.close_sent or self.broken:
            return None
        if not self.idle:
            return None
        return close_frame(closed_code, reason or "")

    # -- writing ---------------------------------------------------------------------------------

    def _accept(self, data: bytes) -> None:
        if self.broken:
            raise trio.BrokenResourceError("the stream was cut mid-frame")
        if self.close_sent:
            raise trio.ClosedResourceError("a close frame was sent: no frame may follow")
        if data[:1] == b"H" and not self.plain and not self.close_sent:
            self.plain = negotiated_extension(data) is False
        elif data and data[0] == _CLOSE_FRAME_START:
            self.close_sent = True

    def write_nowait(self, frame: bytes) -> int | None:
        """Write the whole frame ``frame`` now if the stream is idle. Returns None if nothing
        was written (busy, or the kernel's buffer is full: queue it), else how many bytes
        are left in this stream's buffer (0: all sent), which :meth:`flush` must send
        before anything else goes out. Never blocks; never raises (a broken socket returns
        None and is found out by the next awaited write)."""
        if not self.idle or self.broken or self.close_sent:
            return None
        try:
            sent = os.write(self.transport.socket.fileno(), frame)
        except OSError:
            return None  # full (EAGAIN), or broken
        if sent < len(frame):
            self._pending = frame[sent:]
        return len(frame) - sent

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` (whole frames, or the handshake answer) and return once the
        kernel has taken it. If cancelled while waiting behind another writer, the data is
        still sent (it is the gateway's to send); if cancelled while writing, the stream is
        cut mid-frame and marked broken."""
        data = bytes(data)
        self._accept(data)
        self._pending += data
        await self.flush()

    async def flush(self) -> None:
        """Return once everything buffered so far has gone to the kernel."""
        while self._pending or self._draining:
            if self.broken:
                break
            if self._draining:
                if self._drained is None:
                    self._drained = trio.lowlevel.ParkingLot()
                await self._drained.park()
                continue
            self._draining = True
            try:
                while self._pending:
                    chunk, self._pending = self._pending, b""
                    try:
                        chunk = self._write_now(chunk)
                        if chunk:
                            await self.transport.send_all(chunk)
                    except BaseException:
                        self.broken = True
                        raise
            finally:
                self._draining = False
                if self._drained is not None:
                    self._drained.unpark_all()
        if self.broken:
            raise trio.BrokenResourceError("the stream was cut mid-frame")

    def _write_now(self, data: bytes) -> bytes:
        """What the kernel takes right now, without a trip through the scheduler; return
        the rest for ``send_all`` (usually nothing)."""
        try:
            sent = os.write(self.transport.socket.fileno(), data)
        except (BlockingIOError, InterruptedError):
            return data
        except OSError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc
        return data[sent:]

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport.wait_send_all_might_not_block()

    # -- reading and closing -------------------------------------------------------------------

    def receive_some(self, max_bytes: int | None = None) -> Coroutine[Any, Any, bytes | bytearray]:
        """The transport's ``receive_some`` coroutine itself, not one wrapping it: the
        reader of every idle connection sleeps in here, and a coroutine frame of ours
        would cost each one ~250 bytes more (issue 16.2)."""
        return self.transport.receive_some(max_bytes)

    async def aclose(self) -> None:
        words = self.last_words() if self.last_words is not None else None
        self.last_words = None
        if words and self.idle and not self.broken:
            # Best effort and never blocking: a close frame fits any healthy socket buffer.
            with contextlib.suppress(OSError, trio.BrokenResourceError):
                self._write_now(words)
        await self.transport.aclose()
