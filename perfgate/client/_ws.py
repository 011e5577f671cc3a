"""The WebSocket shell: RFC 6455 over anyio streams, with wsproto doing the protocol.

:class:`WebSocket` is one connection: :meth:`send_text` (frames written while another send
is in flight go out with it, in one write: many submits in flight cost few syscalls) and
:meth:`receive_text` (answers the server's pings itself). A close or a broken stream is
:class:`ConnectionLost`; the handshake is bounded by the caller's deadline.
"""

from __future__ import annotations

import contextlib
import ssl
from collections import deque

import anyio
import anyio.abc
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from perfgate.client import _protocol as p
from perfgate.client._errors import PerfgateConnectionError, PerfgateTimeout
from perfgate.client._http import open_stream

_READ_BYTES = 65_536


class ConnectionLost(PerfgateConnectionError):
    """The WebSocket closed (``code`` when the server sent a close frame) or broke."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class NotSent(ConnectionLost):
    """The connection was already lost: the frame was never sent (a retry is safe)."""


class WebSocket:
    def __init__(self, stream: anyio.abc.ByteStream, ws: WSConnection) -> None:
        self._stream = stream
        self._ws = ws
        self._out = bytearray()
        self._sending = False
        self._texts: deque[str] = deque()
        self._parts: list[str] = []
        self._closed: ConnectionLost | None = None

    @classmethod
    async def connect(
        cls,
        endpoint: p.Endpoint,
        *,
        token: str | None,
        timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> WebSocket:
        """Open and handshake. Raises :class:`PerfgateConnectionError` (unreachable),
        :class:`PerfgateTimeout`, or the typed problem error of a refused handshake (401,
        403, 503...)."""
        with anyio.move_on_after(timeout_s) as scope:
            stream = await open_stream(endpoint, ssl_context)
            try:
                return await cls._handshake(stream, endpoint, token)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await stream.aclose()
                raise
        assert scope.cancelled_caught
        raise PerfgateTimeout(
            f"WebSocket handshake with {endpoint.host_header}: no answer within {timeout_s:g} s"
        )

    @classmethod
    async def _handshake(
        cls, stream: anyio.abc.ByteStream, endpoint: p.Endpoint, token: str | None
    ) -> WebSocket:
        ws = WSConnection(ConnectionType.CLIENT)
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        target = endpoint.path or "/ws"
        await stream.send(
            ws.send(Request(host=endpoint.host_header, target=target, extra_headers=headers))
        )
        status, body = 0, bytearray()
        while True:
            try:
                data = await stream.receive(_READ_BYTES)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError) as exc:
                raise PerfgateConnectionError(f"WebSocket handshake cut off: {exc!r}") from None
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    return cls(stream, ws)
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        p.decode_response(status, [], b"")
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        p.decode_response(status, [], bytes(body))
                        raise PerfgateConnectionError(f"WebSocket handshake refused ({status})")

    async def send_text(self, text: str) -> None:
        """Queue one text frame and write everything queued. A frame queued while another
        task is writing goes out with that task's next write (this call then returns at once:
        a lost connection shows up on :meth:`receive_text`). Cancelled mid-write, the
        connection is closed: a half-written frame cannot be taken back."""
        if self._closed is not None:
            raise NotSent(str(self._closed), code=self._closed.code)
        self._out += self._ws.send(TextMessage(data=text))
        await self._flush()

    async def _flush(self) -> None:
        if self._sending:
            return
        self._sending = True
        try:
            while self._out:
                data, self._out = bytes(self._out), bytearray()
                await self._stream.send(data)
        except BaseException as exc:
            self._closed = self._closed or ConnectionLost(f"WebSocket send failed: {exc!r}")
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()
            if isinstance(exc, anyio.BrokenResourceError | anyio.ClosedResourceError | OSError):
                raise self._closed from None
            raise
        finally:
            self._sending = False

    async def receive_text(self) -> str:
        """The next text frame. Raises :class:`ConnectionLost` once the connection is over."""
        while not self._texts:
            if self._closed is not None:
                raise self._closed
            try:
                data = await self._stream.receive(_READ_BYTES)
            except (
                anyio.EndOfStream,
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
                OSError,
            ) as exc:
                self._closed = ConnectionLost(f"WebSocket connection lost: {exc!r}")
                continue
            self._ws.receive_data(data)
            for event in self._ws.events():
                if isinstance(event, TextMessage):
                    self._parts.append(event.data)
                    if event.message_finished:
                        self._texts.append("".join(self._parts))
                        self._parts.clear()
                elif isinstance(event, Ping):
                    self._out += self._ws.send(event.response())
                elif isinstance(event, CloseConnection):
                    self._closed = ConnectionLost(
                        f"WebSocket closed by the server: {event.code} {event.reason}",
                        code=int(event.code),
                    )
                    with contextlib.suppress(LocalProtocolError):  # best effort
                        self._out += self._ws.send(event.response())
            if self._out:
                with contextlib.suppress(ConnectionLost):
                    await self._flush()
        return self._texts.popleft()

    async def aclose(self) -> None:
        """Close at once (no close handshake wait): the server sees the TCP close."""
        self._closed = self._closed or ConnectionLost("WebSocket closed by the client")
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()
