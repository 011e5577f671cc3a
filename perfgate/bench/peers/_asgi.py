"""Just enough raw ASGI for the peers (no framework: a framework would be part of the cost)."""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


async def send_json(send: Send, status: int, obj: Any) -> None:
    body = json.dumps(obj).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive: Receive, send: Send) -> None:
    """Accept startup/shutdown without doing anything."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def healthz_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The bare app of the ``http`` peers: ``GET /healthz`` -> ``{"status": "ok"}``."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["path"] == "/healthz":
        await send_json(send, 200, {"status": "ok"})
    else:
        await send_json(send, 404, {"title": "not found"})


def bind_loopback() -> socket.socket:
    """A listening TCP socket on a free loopback port.

    ``IPPROTO_TCP`` must be explicit: asyncio enables TCP_NODELAY on accepted connections only
    when ``sock.proto`` says TCP, and with ``proto=0`` every keep-alive response of uvicorn
    waited ~40 ms for the client's delayed ACK (Nagle).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def write_ready(path: str, ready: dict[str, Any]) -> None:
    """Write a ready file atomically (the bench polls for it to appear)."""
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(ready))
    tmp.replace(path)


def write_ready_file(path: str, http_sock: socket.socket, ws_sock: socket.socket | None) -> None:
    """Write the ready file of a peer that serves HTTP (and WebSocket) on these sockets."""
    import os

    host, port = http_sock.getsockname()[:2]
    ready: dict[str, Any] = {"http": f"http://{host}:{port}", "pid": os.getpid()}
    if ws_sock is not None:
        whost, wport = ws_sock.getsockname()[:2]
        ready["ws"] = f"ws://{whost}:{wport}"
    else:
        ready["ws"] = f"ws://{host}:{port}"
    write_ready(path, ready)
