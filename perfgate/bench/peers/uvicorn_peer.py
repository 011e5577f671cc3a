"""Peer ``uvicorn``: the bare ASGI app on uvicorn (asyncio, httptools/h11)."""

from __future__ import annotations

import asyncio

from perfgate.bench.peers._asgi import bind_loopback, healthz_app, write_ready_file
from perfgate.bench.peers._uvicorn import make_server, serve_until_signal
from perfgate.bench.server import PeerOptions


def main(ready_file: str, options: PeerOptions) -> int:
    sock = bind_loopback()
    server = make_server(healthz_app)
    asyncio.run(
        serve_until_signal([(server, sock)], lambda: write_ready_file(ready_file, sock, None))
    )
    return 0
