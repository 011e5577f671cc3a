"""``python -m perfgate.bench.peers NAME --ready-file FILE``: run one peer until SIGTERM."""

from __future__ import annotations

import argparse
import importlib

from perfgate.bench.peers import PEERS

MODULES = {
    "hypercorn-trio": "perfgate.bench.peers.hypercorn_trio",
    "uvicorn": "perfgate.bench.peers.uvicorn_peer",
    "processpool": "perfgate.bench.peers.processpool",
    "websockets": "perfgate.bench.peers.websockets_broadcast",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perfgate.bench.peers")
    parser.add_argument("name", choices=sorted(PEERS))
    parser.add_argument("--ready-file", required=True)
    args = parser.parse_args(argv)
    module = importlib.import_module(MODULES[args.name])
    code: int = module.main(args.ready_file)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
