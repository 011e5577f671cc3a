"""The request-head size check (perfgate/http/head_limit.py): exact sizes and the refusal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from perfgate.http.head_limit import head_bytes, refuse, too_large

HEADERS = [(b"host", b"localhost:8080"), (b"x-long", b"v" * 300), (b"accept", b"*/*")]


def _wire(method: str, path: bytes, query: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    target = path + (b"?" + query if query else b"")
    lines = [method.encode() + b" " + target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n"  # the head without its final empty line


@pytest.mark.parametrize("query", [b"", b"wait=10&x=1"])
def test_head_bytes_is_the_size_on_the_wire(query: bytes) -> None:
    wire = _wire("POST", b"/v1/jobs", query, HEADERS)
    assert head_bytes("POST", b"/v1/jobs", query, HEADERS) == len(wire)


def test_too_large_is_strictly_over_the_limit() -> None:
    scope = {"type": "http", "method": "GET", "path": "/x", "query_string": b"", "headers": HEADERS}
    size = head_bytes("GET", b"/x", b"", HEADERS)
    assert not too_large(scope, size)
    assert too_large(scope, size - 1)
    # No raw_path: the decoded path counts; a WebSocket scope has no method.
    ws = {"type": "websocket", "path": "/ws", "headers": HEADERS}
    assert too_large(ws, head_bytes("GET", b"/ws", b"", HEADERS) - 1)


async def test_refuse_answers_431_problem_json_with_connection_close() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await refuse({"type": "http"}, send, 1234)
    start, body = sent
    assert start["status"] == 431
    headers = dict(start["headers"])
    assert headers[b"connection"] == b"close"
    assert headers[b"content-type"] == b"application/problem+json"
    assert int(headers[b"content-length"]) == len(body["body"])
    problem = json.loads(body["body"])
    assert problem["status"] == 431 and problem["code"] == "header_too_large"
    assert "1234" in problem["detail"]


async def test_refuse_closes_a_websocket_handshake_with_1009() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await refuse({"type": "websocket"}, send, 100)
    assert sent == [{"type": "websocket.close", "code": 1009}]
