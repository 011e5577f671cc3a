"""A lean HTTP/1.1 client: one keep-alive connection, h11 over a trio socket.

The load generator's own cost is part of every latency it reports, so it should be small.
A general client (httpx) spends ~1-2 ms of Python per request on pools, URL objects and
header models; this one does only what the scenarios need (GET/POST with a JSON body, a
Content-Length response) on the sans-IO ``h11`` state machine.

Cancellation (the request timeout) mid-request leaves the connection in an unknown state:
it is closed and the next request opens a new one.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit

import attrs
import h11
import trio


@attrs.frozen
class Response:
    method: str
    path: str
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpConnection:
    """``async with HttpConnection("http://h:p") as c: await c.request("GET", "/healthz")``."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"need an http://host:port URL, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.host_header = parts.netloc.encode()
        self._stream: trio.SocketStream | None = None
        self._h11 = h11.Connection(h11.CLIENT)

    async def __aenter__(self) -> HttpConnection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await trio.aclose_forcefully(stream)

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Response:
        return await self.request("GET", path + ("?" + urlencode(params) if params else ""))

    async def post(self, path: str, json_body: Any) -> Response:
        return await self.request("POST", path, json.dumps(json_body).encode())

    async def request(self, method: str, path: str, body: bytes | None = None) -> Response:
        """One request/response. Raises on a broken connection or a malformed response."""
        if self._stream is None or self._h11.our_state is not h11.IDLE:
            await self.aclose()
            self._stream = await trio.open_tcp_stream(self.host, self.port)
            self._h11 = h11.Connection(h11.CLIENT)
        stream = self._stream
        done = False
        try:
            headers = [(b"host", self.host_header), (b"user-agent", b"perfgate-bench")]
            if body is not None:
                headers += [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
            data = self._h11.send(h11.Request(method=method, target=path, headers=headers))
            if body:
                data += self._h11.send(h11.Data(data=body))
            data += self._h11.send(h11.EndOfMessage())
            await stream.send_all(data)
            status, chunks = 0, []
            while True:
                event = self._h11.next_event()
                if event is h11.NEED_DATA:
                    received = await stream.receive_some(65536)
                    self._h11.receive_data(received)
                    if not received and self._h11.their_state is not h11.DONE:
                        raise ConnectionError("server closed the connection mid-response")
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise ConnectionError("server closed the connection")
            if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
                self._h11.start_next_cycle()
            done = True
            return Response(method, path, status, b"".join(chunks))
        finally:
            if not done:
                # cancelled or failed mid-request: the connection's state is unknown
                with trio.CancelScope(shield=True):
                    await self.aclose()
