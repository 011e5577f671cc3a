"""Peer ``celery``: a Celery worker, prefork pool, Redis broker and result backend.

This process *is* the worker (``app.worker_main``): its prefork children are its own, it
writes the ready file once the worker is consuming (Celery's ``worker_ready`` signal), and
SIGTERM is Celery's warm shutdown. The load generator submits with ``echo.delay(x).get()``
(:mod:`perfgate.bench.scenarios.jobclients`).
"""

from __future__ import annotations

import os
from typing import Any

from celery.signals import worker_ready

from perfgate.bench.peers._asgi import write_ready
from perfgate.bench.peers.celery_app import make_app
from perfgate.bench.server import PeerOptions


def main(ready_file: str, options: PeerOptions) -> int:
    app = make_app(options.redis_url)

    def announce(**_: Any) -> None:
        ready = {"http": "", "ws": "", "pid": os.getpid(), "client": "celery"}
        write_ready(ready_file, {**ready, "redis": options.redis_url})

    worker_ready.connect(announce, weak=False)
    argv = ["worker", "--pool=prefork", f"--concurrency={options.workers}"]
    argv += ["--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    try:
        app.worker_main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
