"""Peer ``hypercorn-trio``: the bare ASGI app on Hypercorn's trio worker (perfgate's own stack
minus Quart and perfgate)."""

from __future__ import annotations

import signal
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from perfgate.bench.peers._asgi import bind_loopback, healthz_app, write_ready_file
from perfgate.bench.server import PeerOptions


async def serve_app(app: Any, ready_file: str) -> None:
    """Serve ASGI ``app`` on Hypercorn-trio on a free loopback port until SIGTERM/SIGINT."""
    sock = bind_loopback()
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:

        async def shutdown_trigger() -> None:
            async for _ in signals:
                return

        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve, app, config, shutdown_trigger=shutdown_trigger))
            write_ready_file(ready_file, sock, None)


def main(ready_file: str, options: PeerOptions) -> int:
    trio.run(serve_app, healthz_app, ready_file)
    return 0
