"""Write several WebSocket frames with one socket write.

trio-websocket sends each message on its own: a lock acquisition, a wsproto serialisation
and a ``send_all`` with its checkpoints, per frame. For a fan-out server that per-frame
cost dominates (profiled at 1,000 subscribers: most of the writer's time was in
``_send``/``send_all``, not in our code). When the installed trio-websocket has the
internals this relies on, :func:`send_texts` serialises each frame with the connection's
own wsproto state machine and writes them all with one ``send_all`` under the
connection's stream lock: what trio-websocket's ``_send`` does for one frame, for many.
Otherwise it falls back to ``send_message`` per frame (same bytes on the wire, slower).
``tests/gateway/test_wire.py`` fails if the fast path stops being available.

Channel messages may also come as ready-made frame ``bytes`` (see
:class:`~perfgate.gateway.outbox.FrameCache`), when :func:`raw_frames_ok` says the
connection negotiated nothing that would change them: a fan-out then frames each message
once instead of once per subscriber through wsproto (a third of the writer's time at
1,000 subscribers, profiled).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection
from wsproto.connection import ConnectionState
from wsproto.events import TextMessage

#: Close codes wsproto reports for a frame it could not parse (protocol error, invalid UTF-8,
#: too big): trio-websocket records them but sends no close frame (see GatewayStream).
PARSE_FAILURE_CODES = frozenset({1002, 1007, 1009})


def close_frame(code: int, reason: str = "") -> bytes:
    """A server's (unmasked) close frame: RFC 6455 §5.5.1, the reason cut to fit 125 bytes."""
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")[:123]
    return bytes((0x88, len(payload))) + payload


class GatewayStream(trio.abc.Stream):
    """The TCP stream under one WebSocket, as trio-websocket sees it: a SocketStream plus
    last words.

    When wsproto cannot parse a frame (invalid UTF-8 in a text frame: 1007; a protocol
    error: 1002), trio-websocket 0.12 records the close code and closes the TCP connection
    without the close frame RFC 6455 §7.1.7 requires, so the client sees an abnormal
    closure and never learns why (issue 19.9). ``last_words`` is asked, as the stream
    closes, for bytes to write first; :func:`failure_close_frame` is the one used. ``socket``
    is the SocketStream's, so the fast paths below still write to it directly.
    """

    def __init__(self, transport: trio.SocketStream) -> None:
        self.transport = transport
        self.socket = transport.socket
        self.last_words: Callable[[], bytes | None] | None = None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.transport.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.transport.receive_some(max_bytes)

    async def aclose(self) -> None:
        words = self.last_words() if self.last_words is not None else None
        self.last_words = None
        if words:
            # Best effort and never blocking: a close frame fits any healthy socket buffer.
            with contextlib.suppress(trio.BrokenResourceError):
                _write_now(self.transport, words)
        await self.transport.aclose()


def failure_close_frame(ws: WebSocketConnection) -> bytes | None:
    """The close frame trio-websocket owes the peer, if any: the connection was closed
    for a frame wsproto could not parse, and no close frame went either way (wsproto is
    still OPEN) and no write is in flight (the frame would land inside another)."""
    closed = ws.closed
    if closed is None or closed.code not in PARSE_FAILURE_CODES:
        return None
    if not fast_path_available(ws) or ws._stream_lock.locked():
        return None
    if ws._wsproto.state is not ConnectionState.OPEN:
        return None
    return close_frame(closed.code, closed.reason or "")


def _transport(stream: trio.abc.Stream) -> trio.SocketStream | None:
    """The SocketStream under ``stream``, for the direct writes below."""
    if isinstance(stream, GatewayStream):
        return stream.transport
    return stream if isinstance(stream, trio.SocketStream) else None


def _write_now(stream: trio.SocketStream, data: bytes) -> bytes:
    """Write what the kernel takes right now, without a trip through the scheduler;
    return the rest (usually nothing) for ``send_all``.

    This is the asyncio transport's strategy: most writes to a healthy peer complete at
    once, and trio's ``send_all`` costs a scheduling round even then. The caller holds the
    connection's stream lock, so nothing else writes to the socket meanwhile; the task
    still checkpoints on its next receive.
    """
    try:
        sent = os.write(stream.socket.fileno(), data)
    except (BlockingIOError, InterruptedError):
        return data
    except OSError as exc:
        raise trio.BrokenResourceError(str(exc)) from exc
    return data[sent:]


_INTERNALS = ("_wsproto", "_stream", "_stream_lock", "_close_reason", "_abort_web_socket")


def fast_path_available(ws: WebSocketConnection) -> bool:
    return all(hasattr(ws, name) for name in _INTERNALS)


def raw_frames_ok(ws: WebSocketConnection) -> bool:
    """True if frames built by :func:`~perfgate.gateway.outbox.websocket_frame` are what
    this connection's wsproto would send: a server side with no extension (no
    compression). Fixed once the handshake is done."""
    if not fast_path_available(ws):
        return False
    conn = getattr(ws._wsproto, "connection", None)
    proto = getattr(conn, "_proto", None)
    return proto is not None and not proto.client and not proto.extensions


async def send_texts(
    ws: WebSocketConnection, texts: Sequence[str | bytes], *, fast: bool | None = None
) -> None:
    """Send ``texts`` as consecutive text frames, in order. A ``bytes`` item is a complete
    frame, sent as is: only pass them if :func:`raw_frames_ok` holds. ``fast`` is
    :func:`fast_path_available` if the caller knows it already (it is fixed per connection).

    Raises ``ConnectionClosed`` if the connection is closed or breaks. If cancelled during
    the write, part of it may have been sent (as with ``send_message``); the connection
    is then only fit to be closed.
    """
    if fast is None:
        fast = fast_path_available(ws)
    if not fast:
        for text in texts:
            assert isinstance(text, str), "raw frames need the fast path"
            await ws.send_message(text)
        return
    if ws._close_reason:
        raise ConnectionClosed(ws._close_reason)
    proto = ws._wsproto
    if proto.state is not ConnectionState.OPEN:
        # What wsproto would refuse; the close handshake has begun.
        raise ConnectionClosed(ws._close_reason)
    data = b"".join([t if isinstance(t, bytes) else proto.send(TextMessage(data=t)) for t in texts])
    lock = ws._stream_lock
    try:
        # Uncontended (the usual case) the lock is taken without a scheduling round;
        # send_all checkpoints anyway.
        lock.acquire_nowait()
    except trio.WouldBlock:
        await lock.acquire()
    stream = ws._stream
    try:
        transport = _transport(stream)
        if transport is not None:
            data = _write_now(transport, data)
        if data:
            await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        await ws._abort_web_socket()
        raise ConnectionClosed(ws._close_reason) from None
    finally:
        lock.release()


def write_inline(ws: WebSocketConnection, data: bytes, writer: trio.lowlevel.Task) -> bytes | None:
    """Write the ready-made frame ``data`` now, from synchronous code (a publisher's
    fan-out), if nothing else is writing to the socket: no scheduling round, no writer
    task wake-up. Only for connections where :func:`raw_frames_ok` holds.

    Returns None if nothing was written (the socket is busy, full or closing: queue the
    frame as usual), ``b""`` if all of it was written, or the unwritten rest of a partial
    write. Then the stream lock is taken on behalf of ``writer``, so that nothing (a ping,
    a pong, a close) can write into the middle of the frame: ``writer`` must pass the rest
    to :func:`finish_write` before anything else. Never raises, never blocks.
    """
    if ws._close_reason or ws._wsproto.state is not ConnectionState.OPEN:
        return None
    lock = ws._stream_lock
    transport = _transport(ws._stream)
    if lock.locked() or transport is None:
        return None
    try:
        sent = os.write(transport.socket.fileno(), data)
    except OSError:
        return None  # full (EAGAIN), or broken: the writer will find out and close.
    if sent == len(data):
        return b""
    # What acquire_nowait() does, for the writer task instead of this one: trio's Lock
    # has no public way to take it on another task's behalf.
    lock._owner = writer
    trio.lowlevel.add_parking_lot_breaker(writer, lock._lot)
    return data[sent:]


async def finish_write(ws: WebSocketConnection, rest: bytes) -> None:
    """Send the rest of a partial :func:`write_inline`, from the task it named, and release
    the stream lock it took for this task. Raises ``ConnectionClosed`` if the connection
    breaks; if cancelled, the lock is released and the connection is only fit to close."""
    lock = ws._stream_lock
    try:
        await ws._stream.send_all(rest)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        await ws._abort_web_socket()
        raise ConnectionClosed(ws._close_reason) from None
    finally:
        lock.release()


def release_if_held(ws: WebSocketConnection) -> None:
    """Release the stream lock if the current task holds it (a writer that ends with the
    rest of a partial inline write still queued)."""
    lock = ws._stream_lock
    if lock.statistics().owner is trio.lowlevel.current_task():
        lock.release()
