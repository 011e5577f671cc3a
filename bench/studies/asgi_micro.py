"""CPU per request of perfgate's ASGI stack, in process: no sockets, no server, no other
helper's noise. Drives ``GET /healthz`` (or ``--path``) through ``wrap_app(create_app(...))``
as the supervisor builds it (monitor included, access log at INFO to /dev/null), and through a
bare Quart-trio hello-world, and prints µs per request of each.

    .venv/bin/python bench/studies/asgi_micro.py [--requests 20000] [--path /healthz]

It leaves out Hypercorn and h11 (the same for both), so the ratio here is the app's own;
``profile_main.py healthz`` measures the whole stack over loopback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quart_hello import make_app

from perfgate.auth import Authenticator
from perfgate.config import load_config
from perfgate.http.app import AppState, create_app
from perfgate.http.server import wrap_app
from perfgate.logs import configure_logging
from perfgate.monitor import Monitor
from perfgate.readiness import Phase, Readiness


def perfgate_asgi() -> Any:
    config = load_config(None, env={})
    readiness = Readiness()
    readiness.advance(Phase.READY)
    state = AppState(
        config=config, readiness=readiness, authenticator=Authenticator(config.auth.tokens)
    )
    state.services.monitor = Monitor(config.monitor)
    return wrap_app(create_app(state), config.http)


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"user-agent", b"wrk"),
            (b"accept", b"*/*"),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "extensions": {},
    }


async def _drive(app: Any, path: str, requests: int) -> float:
    sent: list[dict[str, Any]] = []
    state = {"asked": 0, "done": trio.Event()}

    async def receive() -> dict[str, Any]:
        state["asked"] += 1
        if state["asked"] == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await state["done"].wait()  # as Hypercorn does: disconnect once the response is out
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            state["done"].set()

    started = time.process_time()
    for _ in range(requests):
        sent.clear()
        state["asked"] = 0
        state["done"] = trio.Event()
        await app(_scope(path), receive, send)
        assert sent[0]["status"] == 200, sent
    return (time.process_time() - started) * 1e6 / requests


async def main(requests: int, path: str) -> None:
    ours, hello = perfgate_asgi(), make_app()
    await _drive(ours, path, 500)
    await _drive(hello, "/healthz", 500)
    results: dict[str, list[float]] = {"perfgate": [], "quart_hello": []}
    for _ in range(3):
        results["perfgate"].append(await _drive(ours, path, requests // 3))
        results["quart_hello"].append(await _drive(hello, "/healthz", requests // 3))
    p, h = min(results["perfgate"]), min(results["quart_hello"])
    print(
        f"perfgate {path}: {p:.1f} us/request; quart hello: {h:.1f} us/request; extra {p - h:.1f} us"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--path", default="/healthz")
    args = parser.parse_args()
    configure_logging("text", "info")
    devnull = open(os.devnull, "w")  # noqa: SIM115 - for the process's life
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    trio.run(main, args.requests, args.path)
