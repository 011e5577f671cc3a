"""Abuse at the connection level, against a real server on a loopback port: slowloris heads,
slow bodies, oversized heads, and a body that arrives after its response."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio

from tests.helpers import start_server, stop_server

HEAD_DEADLINE_S = 2  # [http] keep_alive_timeout_s in this server
BODY_DEADLINE_S = 2  # [http] read_timeout_s
MAX_HEADER_BYTES = 16_384


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("limits")
    env = {
        "PERFGATE_HTTP_KEEP_ALIVE_TIMEOUT_S": str(HEAD_DEADLINE_S),
        "PERFGATE_HTTP_READ_TIMEOUT_S": str(BODY_DEADLINE_S),
        "PERFGATE_HTTP_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    }
    proc, ready = start_server(tmp, env=env)
    yield ready
    code, err = stop_server(proc)
    assert code == 0, err[-4000:]
    assert "unhandled error" not in err


async def _connect(server: dict[str, Any]) -> trio.SocketStream:
    url = urlsplit(server["http"])
    assert url.hostname is not None and url.port is not None
    return await trio.open_tcp_stream(url.hostname, url.port)


async def _read_until_eof(stream: trio.SocketStream, timeout_s: float = 10) -> bytes:
    """Everything the server sends until it closes; fails if it does not close in time."""
    data = b""
    with trio.fail_after(timeout_s):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:  # reset after the response: closed all the same
                return data
            if not chunk:
                return data
            data += chunk


async def _trickle(stream: trio.SocketStream, data: bytes, every_s: float, sent: list[int]) -> None:
    """Send ``data`` one byte every ``every_s`` until the server closes; ``sent`` gets one
    entry per byte that went out."""
    for byte in data:
        try:
            await stream.send_all(bytes([byte]))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        sent.append(byte)
        await trio.sleep(every_s)


async def test_slowloris_head_is_cut_off_while_other_clients_are_served(
    server: dict[str, Any],
) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: perfgate\r\nX-Trickle: " + b"a" * 40 + b"\r\n\r\n"
    sent: list[int] = []
    closed = trio.Event()
    served = 0

    async def watch(stream: trio.SocketStream) -> None:
        assert await _read_until_eof(stream, timeout_s=len(head) + 10) == b""
        closed.set()

    async def others() -> None:
        nonlocal served
        async with httpx.AsyncClient(base_url=server["http"]) as client:
            while not closed.is_set():
                response = await client.get("/healthz", timeout=5)
                assert response.status_code == 200
                served += 1
                await trio.sleep(0.2)

    stream = await _connect(server)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch, stream)
        nursery.start_soon(others)
        await _trickle(stream, head, 1.0, sent)
        await closed.wait()
    await stream.aclose()
    # Cut off at the head deadline, long before the head was complete (one byte a second).
    assert 0 < len(sent) < len(head) // 2, len(sent)
    assert served >= 3


async def test_a_slowloris_head_after_a_response_is_cut_off(server: dict[str, Any]) -> None:
    """The head deadline starts again after each response, not only on a new connection:
    otherwise one quick request buys a slowloris client all the time it wants for the next
    head (each byte well inside the read timeout). Hypercorn restarts that timer from inside
    the app's final ``send``, which quart-trio cancels as soon as the response is out; the
    final-send shield (:mod:`perfgate.http.closing`) is what lets the restart happen."""
    stream = await _connect(server)
    await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: perfgate\r\n\r\n")
    first = b""
    with trio.fail_after(10):
        while not first.endswith(b'{"status":"ok"}\n'):
            first += await stream.receive_some(65536)
    assert first.startswith(b"HTTP/1.1 200"), first[:200]
    head = b"GET /healthz HTTP/1.1\r\nHost: perfgate\r\nX-Trickle: " + b"a" * 20 + b"\r\n\r\n"
    sent: list[int] = []
    async with trio.open_nursery() as nursery:
        # a byte every half second, a quarter of the read timeout: each read is in time
        nursery.start_soon(_trickle, stream, head, 0.5, sent)
        rest = await _read_until_eof(stream, timeout_s=len(head) + 10)
        nursery.cancel_scope.cancel()
    await stream.aclose()
    assert rest == b"", rest[:200]
    assert 0 < len(sent) < len(head) // 2, len(sent)


async def test_slow_body_gets_408_and_the_connection_is_closed(server: dict[str, Any]) -> None:
    stream = await _connect(server)
    await stream.send_all(
        b"POST /v1/jobs HTTP/1.1\r\nHost: perfgate\r\nContent-Type: application/json\r\n"
        b"Content-Length: 60\r\n\r\n"
    )

    async def trickle() -> None:
        for _ in range(30):
            try:
                await stream.send_all(b" ")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trickle)
        reply = await _read_until_eof(stream, timeout_s=20)
        nursery.cancel_scope.cancel()
    await stream.aclose()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"application/problem+json" in reply


def _head(path: str, header_bytes: int) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: perfgate\r\nX-Padding: {'p' * header_bytes}\r\n\r\n"
    ).encode()


async def test_a_head_under_the_limit_is_served(server: dict[str, Any]) -> None:
    stream = await _connect(server)
    await stream.send_all(_head("/healthz", MAX_HEADER_BYTES - 200))
    with trio.fail_after(10):
        reply = await stream.receive_some(65536)
    await stream.aclose()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


async def test_an_oversized_head_is_refused_with_431_and_the_connection_closed(
    server: dict[str, Any],
) -> None:
    # Complete and sent in one write: h11 would parse it whole; perfgate's own check refuses it.
    stream = await _connect(server)
    await stream.send_all(_head("/healthz", MAX_HEADER_BYTES + 4096))
    reply = await _read_until_eof(stream)
    await stream.aclose()
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
    assert b"connection: close" in reply.lower()


async def test_an_endless_head_is_refused_with_431_and_the_connection_closed(
    server: dict[str, Any],
) -> None:
    # Never finished: h11 stops buffering past the limit.
    stream = await _connect(server)
    await stream.send_all(b"GET /healthz HTTP/1.1\r\nX-Padding: " + b"p" * (MAX_HEADER_BYTES + 1))
    reply = await _read_until_eof(stream)
    await stream.aclose()
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]


async def test_a_body_that_arrives_after_its_response_does_not_hang_the_connection(
    server: dict[str, Any],
) -> None:
    """Regression (found by schemathesis): a 405 sent before the body arrived left the
    keep-alive connection open but deaf; the next request on it never got an answer."""
    body = b'{"task": "echo"}'
    request = (
        b"PUT /v1/jobs HTTP/1.1\r\nHost: perfgate\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    stream = await _connect(server)
    await stream.send_all(request)
    with trio.fail_after(10):
        first = await stream.receive_some(65536)
    assert first.startswith(b"HTTP/1.1 405"), first[:200]
    await trio.sleep(0.2)  # the response is out; now the body
    await stream.send_all(body)
    await trio.sleep(0.2)
    try:
        await stream.send_all(request + body)
    except trio.BrokenResourceError:
        return  # closed, as it should be: a connection with a half-read request is not reused
    # Either an answer or a close, promptly; never silence.
    second = await _read_until_eof(stream, timeout_s=HEAD_DEADLINE_S + 8)
    await stream.aclose()
    assert second == b"" or second.startswith(b"HTTP/1.1 405"), second[:200]
