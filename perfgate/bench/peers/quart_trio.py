"""Peer ``quart-trio``: a Quart-trio hello-world on Hypercorn's trio worker.

perfgate's own HTTP stack minus perfgate: the floor this stack allows for ``GET /healthz``
(the bare ASGI app of ``hypercorn-trio`` is the floor without Quart).
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from quart_trio import QuartTrio

from perfgate.bench.peers.hypercorn_trio import serve_app
from perfgate.bench.server import PeerOptions


def make_app() -> QuartTrio:
    app = QuartTrio("perfgate-bench-quart-trio")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    return app


def main(ready_file: str, options: PeerOptions) -> int:
    logging.getLogger("quart.serving").setLevel(logging.WARNING)
    trio.run(serve_app, make_app(), ready_file)
    return 0
