"""Peer ``websockets``: the ``websockets`` library's ``broadcast()`` behind perfgate's protocol.

WebSocket side (``ws://.../ws``): a welcome frame, ``{"op": "subscribe", "channel": C, "id": I}``
answered with ``{"type": "ack", "id": I}``, deliveries as ``{"type": "message", "channel": C,
"offset": N, "data": D}``. HTTP side, on its own port as in perfgate:
``POST /v1/channels/{channel}/messages {"data": D}`` -> 202 ``{"offset": N}``, served by
uvicorn in the same asyncio loop. No history, no batching, no backpressure policy beyond
what ``broadcast()`` does (it skips connections whose write buffer is full).

:class:`Hub` is the protocol, shared with the ``websockets-trio`` peer
(:mod:`perfgate.bench.peers.websockets_trio`): only the broadcast differs.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

from perfgate.bench.peers._asgi import (
    Receive,
    Scope,
    Send,
    bind_loopback,
    lifespan,
    read_body,
    send_json,
    write_ready_file,
)
from perfgate.bench.peers._uvicorn import make_server, serve_until_signal
from perfgate.bench.server import PeerOptions

#: send one text frame to several connections (the library's broadcast())
SendAll = Callable[[Iterable[Any], str], Awaitable[None]]


async def asyncio_broadcast(connections: Iterable[Any], frame: str) -> None:
    broadcast(connections, frame)  # synchronous: queues the frame on every connection


class Hub:
    def __init__(self, send_all: SendAll = asyncio_broadcast) -> None:
        self.send_all = send_all
        self.channels: dict[str, set[Any]] = defaultdict(set)
        self.offsets: dict[str, int] = defaultdict(int)
        self.sessions = 0

    async def handle(self, ws: Any) -> None:
        self.sessions += 1
        await ws.send(
            json.dumps({"type": "welcome", "session": str(self.sessions), "heartbeat_s": 30})
        )
        joined: set[str] = set()
        try:
            async for frame in ws:
                try:
                    msg = json.loads(frame)
                    op, channel = msg.get("op"), msg.get("channel")
                except (ValueError, AttributeError):
                    await ws.send(
                        json.dumps({"type": "error", "code": "bad_request", "message": "not JSON"})
                    )
                    continue
                if op == "subscribe" and isinstance(channel, str):
                    self.channels[channel].add(ws)
                    joined.add(channel)
                    await ws.send(
                        json.dumps({"type": "ack", "id": msg.get("id"), "channel": channel})
                    )
                elif op == "unsubscribe" and isinstance(channel, str):
                    self.channels[channel].discard(ws)
                    joined.discard(channel)
                    await ws.send(json.dumps({"type": "ack", "id": msg.get("id")}))
                elif op == "ping":
                    await ws.send(json.dumps({"type": "ack", "id": msg.get("id")}))
                else:
                    await ws.send(
                        json.dumps(
                            {
                                "type": "error",
                                "id": msg.get("id"),
                                "code": "bad_op",
                                "message": f"unknown op {op!r}",
                            }
                        )
                    )
        except ConnectionClosed:
            pass
        finally:
            for channel in joined:
                self.channels[channel].discard(ws)

    async def publish(self, channel: str, data: Any) -> int:
        self.offsets[channel] += 1
        offset = self.offsets[channel]
        frame = json.dumps({"type": "message", "channel": channel, "offset": offset, "data": data})
        await self.send_all(list(self.channels.get(channel, ())), frame)
        return offset

    async def http_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        path, method = scope["path"], scope["method"]
        prefix, suffix = "/v1/channels/", "/messages"
        if path == "/healthz":
            await send_json(send, 200, {"status": "ok"})
        elif method == "POST" and path.startswith(prefix) and path.endswith(suffix):
            channel = path[len(prefix) : -len(suffix)]
            try:
                body = json.loads(await read_body(receive))
                data = body["data"]
            except (ValueError, KeyError, TypeError):
                await send_json(send, 400, {"title": "bad request"})
                return
            await send_json(send, 202, {"offset": await self.publish(channel, data)})
        else:
            await send_json(send, 404, {"title": "not found"})


async def _run(ready_file: str) -> None:
    hub = Hub()
    http_sock, ws_sock = bind_loopback(), bind_loopback()
    async with serve(hub.handle, sock=ws_sock, compression=None):
        server = make_server(hub.http_app)
        await serve_until_signal(
            [(server, http_sock)], lambda: write_ready_file(ready_file, http_sock, ws_sock)
        )


def main(ready_file: str, options: PeerOptions) -> int:
    asyncio.run(_run(ready_file))
    return 0
