"""Peer ``websockets-trio``: the ``websockets`` library on trio (``websockets.trio``, from
websockets 16), the fairest WebSocket peer on perfgate's own event loop.

The same protocol as the asyncio peer (:class:`~perfgate.bench.peers.websockets_broadcast.Hub`),
with ``websockets.trio``'s ``broadcast()``; the HTTP publish side runs on Hypercorn's trio
worker in the same trio run, on its own port as in perfgate.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from functools import partial
from typing import Any

import trio
import trio.lowlevel
from hypercorn.config import Config
from hypercorn.trio import serve as serve_http
from websockets.trio.server import broadcast, serve

from perfgate.bench.peers._asgi import bind_loopback, write_ready_file
from perfgate.bench.peers.websockets_broadcast import Hub
from perfgate.bench.server import PeerOptions


async def trio_broadcast(connections: Iterable[Any], frame: str) -> None:
    await broadcast(connections, frame)


async def _run(ready_file: str) -> None:
    hub = Hub(trio_broadcast)
    http_app: Any = hub.http_app
    http_sock, ws_sock = bind_loopback(), bind_loopback()
    ws_listener = trio.SocketListener(trio.socket.from_stdlib_socket(ws_sock))
    config = Config()
    config.bind = [f"fd://{http_sock.fileno()}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(serve, hub.handle, listeners=[ws_listener], compression=None)
            )
            stop = trio.Event()

            async def shutdown_trigger() -> None:
                await stop.wait()

            await nursery.start(
                partial(serve_http, http_app, config, shutdown_trigger=shutdown_trigger)
            )
            write_ready_file(ready_file, http_sock, ws_sock)
            async for _ in signals:
                break
            stop.set()
            await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()


def main(ready_file: str, options: PeerOptions) -> int:
    trio.run(_run, ready_file)
    return 0
