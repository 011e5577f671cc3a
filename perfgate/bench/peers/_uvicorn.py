"""Run ASGI apps on uvicorn inside an asyncio loop we own, stopping cleanly on SIGTERM.

uvicorn's own signal capture re-raises the signal after shutdown (the process would die of
SIGTERM instead of exiting 0), so the peers install their own handler and set
``should_exit`` themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn


class QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(app: Any) -> QuietServer:
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", ws="none", interface="asgi3"
    )
    return QuietServer(config)


async def serve_until_signal(
    servers: list[tuple[QuietServer, socket.socket]], on_started: Any
) -> None:
    """Serve every ``(server, socket)`` until SIGTERM/SIGINT; call ``on_started()`` once up."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
    while not all(server.started for server, _ in servers):
        if any(task.done() for task in tasks):
            await asyncio.gather(*tasks)  # raises the startup error
            return
        await asyncio.sleep(0.01)
    on_started()
    await stop.wait()
    for server, _ in servers:
        server.should_exit = True
    await asyncio.gather(*tasks)
