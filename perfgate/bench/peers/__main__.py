"""``python -m perfgate.bench.peers NAME --ready-file FILE``: run one peer until SIGTERM."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import threading

from perfgate.bench.peers import PEERS

MODULES = {
    "hypercorn-trio": "perfgate.bench.peers.hypercorn_trio",
    "uvicorn": "perfgate.bench.peers.uvicorn_peer",
    "processpool": "perfgate.bench.peers.processpool",
    "websockets": "perfgate.bench.peers.websockets_broadcast",
}


def _watch_lifeline() -> None:
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
    args = parser.parse_args(argv)
    if args.lifeline_stdin:
        threading.Thread(target=_watch_lifeline, name="lifeline", daemon=True).start()
    module = importlib.import_module(MODULES[args.name])
    code: int = module.main(args.ready_file)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
