"""``python -m perfgate.bench.peers NAME --ready-file FILE``: run one peer until SIGTERM."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import threading

from perfgate.bench.peers import PEERS, REDIS_PEERS
from perfgate.bench.server import PeerOptions

MODULES = {
    "hypercorn-trio": "perfgate.bench.peers.hypercorn_trio",
    "quart-trio": "perfgate.bench.peers.quart_trio",
    "uvicorn": "perfgate.bench.peers.uvicorn_peer",
    "processpool": "perfgate.bench.peers.processpool",
    "celery": "perfgate.bench.peers.celery_peer",
    "arq": "perfgate.bench.peers.arq_peer",
    "websockets": "perfgate.bench.peers.websockets_broadcast",
    "websockets-trio": "perfgate.bench.peers.websockets_trio",
}


def watch_lifeline() -> None:
    # Blocking reads in a daemon thread serve the trio and asyncio peers alike. os.read on
    # the fd, not sys.stdin: a thread blocked inside sys.stdin holds its buffer lock, and a
    # forked ProcessPoolExecutor worker (which closes sys.stdin at start) would deadlock on it.
    while os.read(0, 4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perfgate.bench.peers")
    parser.add_argument("name", choices=sorted(PEERS))
    parser.add_argument("--ready-file", required=True)
    parser.add_argument(
        "--lifeline-stdin",
        action="store_true",
        help="exit (as on SIGTERM) when stdin reaches EOF, i.e. when the bench that started "
        "this peer is gone, even if it was killed with SIGKILL",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--redis", default="", help="redis://HOST:PORT/DB (celery, arq)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be positive")
    if args.name in REDIS_PEERS and not args.redis:
        parser.error(f"{args.name} needs --redis URL")
    if args.lifeline_stdin:
        threading.Thread(target=watch_lifeline, name="lifeline", daemon=True).start()
    module = importlib.import_module(MODULES[args.name])
    code: int = module.main(args.ready_file, PeerOptions(args.workers, args.redis))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
