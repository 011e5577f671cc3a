"""The HTTP shell: HTTP/1.1 over anyio streams, with h11 doing the protocol.

A small keep-alive pool (at most ``max_idle`` idle connections are kept); each request runs
under one deadline covering connect, send and the whole answer, so no call can hang. A
refused or broken connection is :class:`PerfgateConnectionError`; a deadline passed is
:class:`PerfgateTimeout`. Runs under trio and asyncio alike (anyio).
"""

from __future__ import annotations

import ssl
from typing import Any

import anyio
import anyio.abc
import h11

from perfgate.client import _protocol as p
from perfgate.client._errors import PerfgateConnectionError, PerfgateTimeout, ProtocolViolation

#: Answers larger than this are refused (a job list page or a batch answer is far smaller).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_READ_BYTES = 65_536


async def open_stream(
    endpoint: p.Endpoint, ssl_context: ssl.SSLContext | None
) -> anyio.abc.ByteStream:
    """A TCP (or TLS) stream to ``endpoint``; :class:`PerfgateConnectionError` if refused."""
    try:
        if endpoint.tls:
            return await anyio.connect_tcp(
                endpoint.host,
                endpoint.port,
                tls=True,
                ssl_context=ssl_context,
                tls_standard_compatible=False,
            )
        return await anyio.connect_tcp(endpoint.host, endpoint.port)
    except (OSError, ssl.SSLError) as exc:
        where = f"{endpoint.host}:{endpoint.port}"
        raise PerfgateConnectionError(f"cannot connect to {where}: {exc}") from exc


class _Conn:
    __slots__ = ("h11", "stream")

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=1_048_576)


class HttpTransport:
    """Requests to one server. Safe to share between tasks: each request takes its own
    connection from the pool (or opens one)."""

    def __init__(
        self,
        endpoint: p.Endpoint,
        *,
        token: str | None,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = 16,
    ) -> None:
        self.endpoint = endpoint
        self.token = token
        self._ssl_context = ssl_context
        self._idle: list[_Conn] = []
        self._max_idle = max_idle

    async def request(
        self,
        method: str,
        path: str,
        *,
        timeout_s: float,
        body: Any = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request; the decoded JSON of a 2xx answer, else the typed problem error.
        Gives up after ``timeout_s`` with :class:`PerfgateTimeout`."""
        req = p.build_request(self.endpoint, method, path, token=self.token, body=body, query=query)
        with anyio.move_on_after(timeout_s) as scope:
            status, headers, data = await self._exchange(req)
        if scope.cancelled_caught:
            raise PerfgateTimeout(f"{method} {path}: no answer within {timeout_s:g} s")
        return p.decode_response(status, headers, data)

    async def _exchange(self, req: p.HttpRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        # A pooled connection the server closed while idle fails at once, before any byte of
        # the answer: that request is retried once on a fresh connection (nothing was acted
        # on: the server closes only idle keep-alive connections).
        while self._idle:
            conn = self._idle.pop()
            try:
                return await self._on(conn, req)
            except _StaleConnection:
                continue
        conn = _Conn(await open_stream(self.endpoint, self._ssl_context))
        try:
            return await self._on(conn, req)
        except _StaleConnection as exc:
            raise PerfgateConnectionError(f"connection closed: {exc}") from None

    async def _on(
        self, conn: _Conn, req: p.HttpRequest
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        reusable = False
        try:
            out = conn.h11.send(
                h11.Request(method=req.method, target=req.target, headers=req.headers)
            )
            out = (out or b"") + (conn.h11.send(h11.Data(data=req.body)) or b"")
            out += conn.h11.send(h11.EndOfMessage()) or b""
            try:
                await conn.stream.send(out)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise _StaleConnection(str(exc)) from None
            status, headers, body = await self._read_answer(conn)
            if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
                conn.h11.start_next_cycle()
                reusable = True
            return status, headers, body
        finally:
            if reusable and len(self._idle) < self._max_idle:
                self._idle.append(conn)
            else:
                with anyio.CancelScope(shield=True):
                    await conn.stream.aclose()

    async def _read_answer(self, conn: _Conn) -> tuple[int, list[tuple[str, str]], bytes]:
        status = 0
        headers: list[tuple[str, str]] = []
        body = bytearray()
        got_any = False
        while True:
            try:
                event = conn.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if not got_any:
                    raise _StaleConnection(str(exc)) from None
                raise ProtocolViolation(f"bad HTTP answer: {exc}") from None
            if event is h11.NEED_DATA:
                try:
                    chunk = await conn.stream.receive(_READ_BYTES)
                except anyio.EndOfStream:
                    chunk = b""
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                    if not got_any:
                        raise _StaleConnection(str(exc)) from None
                    raise PerfgateConnectionError(f"connection broken: {exc}") from None
                got_any = got_any or bool(chunk)
                conn.h11.receive_data(chunk)
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_RESPONSE_BYTES:
                    raise ProtocolViolation(f"answer over {MAX_RESPONSE_BYTES} bytes")
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                if not got_any:
                    raise _StaleConnection("closed before an answer")
                raise PerfgateConnectionError("connection closed in the middle of an answer")

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        with anyio.CancelScope(shield=True):
            for conn in idle:
                await conn.stream.aclose()


class _StaleConnection(Exception):
    """The connection was closed before any byte of the answer came back."""
