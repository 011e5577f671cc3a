"""Run the gateway alone, for tests and benchmarks in separate processes.

``python -m perfgate.gateway [--bind HOST:PORT] [--set KEY=JSON ...] [--tokens JSON]``
prints one JSON line ``{"url": "ws://h:p", "pid": N}`` once listening, and serves until
SIGTERM or SIGINT, then drains for up to ``--drain-s`` seconds. The garbage collector is
set as for ``perfgate serve`` (:mod:`perfgate.gcpolicy`). (``perfgate serve`` is the
product entry point; this one has no HTTP, store or pool.)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

import trio

from perfgate import gcpolicy
from perfgate.auth import Authenticator
from perfgate.broker import MemoryHub
from perfgate.config import GatewayConfig
from perfgate.gateway.server import Gateway


async def _main(args: argparse.Namespace) -> None:
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    config = GatewayConfig(bind=args.bind, **overrides)
    hub = MemoryHub.from_config(config, clock=trio.current_time)
    # Each value is a list of scopes or {"scopes": [...], "tenant": "..."}, as in [auth] tokens.
    gateway = Gateway(config, hub, Authenticator(json.loads(args.tokens)))
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        url = await nursery.start(gateway.run)
        gcpolicy.freeze()
        # Catch the signals before saying so: a SIGTERM right after the line drains too.
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            print(json.dumps({"url": url, "pid": os.getpid()}), flush=True)
            async for _ in signals:
                break
        await gateway.drain(args.drain_s)
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m perfgate.gateway")
    parser.add_argument("--bind", default="127.0.0.1:0")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON")
    parser.add_argument("--tokens", default="{}")
    parser.add_argument("--drain-s", type=float, default=1.0)
    args = parser.parse_args(argv)
    gcpolicy.tune()
    try:
        trio.run(_main, args)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
