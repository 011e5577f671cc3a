"""A Quart-trio hello-world on Hypercorn's trio worker: the floor perfgate's HTTP stack allows.

    .venv/bin/python bench/studies/quart_hello.py --ready-file FILE

Serves ``GET /healthz`` → ``{"status": "ok"}`` on a free loopback port (with Hypercorn's
defaults, or with perfgate's settings given ``--perfgate-config``), writes
``{"http": URL, "pid": N}`` to the ready file, runs until SIGTERM/SIGINT. Used by
``profile_main.py`` to compare perfgate's ``/healthz`` with what the same stack costs bare.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

# The same hello-world that `perfgate bench` runs as its quart-trio peer; only the serving
# differs here (optionally with perfgate's own Hypercorn settings).
from perfgate.bench.peers.quart_trio import make_app


def _write_ready(path: str, data: dict[str, Any]) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)


async def _run(ready_file: str, perfgate_config: bool) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = Config()
    if perfgate_config:  # perfgate's own Hypercorn settings (timeouts, limits)
        from perfgate.config import HttpConfig
        from perfgate.http.server import hypercorn_config

        config = hypercorn_config(HttpConfig(), graceful_timeout_s=1.0)
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:

        async def shutdown_trigger() -> None:
            async for _ in signals:
                return

        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(serve, make_app(), config, shutdown_trigger=shutdown_trigger)
            )
            host, port = sock.getsockname()[:2]
            _write_ready(ready_file, {"http": f"http://{host}:{port}", "pid": os.getpid()})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ready-file", required=True)
    parser.add_argument(
        "--perfgate-config", action="store_true", help="with perfgate's Hypercorn settings"
    )
    args = parser.parse_args()
    trio.run(_run, args.ready_file, args.perfgate_config)
