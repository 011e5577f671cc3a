"""10,000 WebSocket clients on one machine: memory, idle CPU, ping spread, fan-out, reconnects.

    .venv/bin/python bench/studies/gateway_10k.py [--connections 10000] [--idle-s 40]
        [--server perfgate|peer] [--tracemalloc] [--gc tuned|default]

A one-off study for issue 16 (the figures in the README come from ``perfgate bench``). The
server runs alone in its own process (``perfgate``: the Gateway with default settings and
an in-memory hub; ``peer``: ``websockets.trio`` with its default keepalive, the same tiny
protocol), the clients (a minimal asyncio client that answers pings) in two more. Phases:

1. open ``--connections`` connections, each reads its welcome and subscribes to one channel;
   server RSS delta / N;
2. ``--idle-s`` seconds idle: server CPU, and the server's pings per second (perfgate only);
3. (perfgate) 10 messages, 0.5 s apart, published in the server to the channel everyone
   holds: publish-to-receive latency at every client, p50/p99/max, and loss;
4. (perfgate) every client drops at once and reconnects at once (no client-side pacing):
   time until all are back, handshakes refused, the server's worst event-loop lag.

``--gc default`` runs the server with CPython's collector settings instead of
:mod:`perfgate.gcpolicy`'s (``tuned``, what the entry points apply), to compare the stalls.

``--tracemalloc`` (perfgate): print what holds the most memory per connection after phase 1:
by allocating line, by file, by package, perfgate's own lines, and by 6-frame traceback
(slow; use a few thousand connections).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "fan"


def emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the server process ------------------------------------------------------------------------


def serve(kind: str, trace: bool, gc_mode: str = "tuned") -> None:
    import psutil
    import trio

    from perfgate import gcpolicy

    if gc_mode == "tuned":
        gcpolicy.tune()

    if trace:
        import tracemalloc

        tracemalloc.start(6)
    process = psutil.Process()
    peers: set[Any] = set()

    async def main() -> None:
        lag = [0.0]

        async def watch_lag() -> None:
            while True:
                before = trio.current_time()
                await trio.sleep(0.005)
                lag[0] = max(lag[0], trio.current_time() - before - 0.005)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_lag)
            if kind == "perfgate":
                from perfgate.auth import Authenticator
                from perfgate.broker import MemoryHub
                from perfgate.config import GatewayConfig
                from perfgate.gateway import Gateway

                config = GatewayConfig(bind="127.0.0.1:0")
                hub = MemoryHub.from_config(config, clock=trio.current_time)
                gateway = Gateway(config, hub, Authenticator({}))
                await nursery.start(hub.run)
                url = await nursery.start(gateway.run)
            else:
                from websockets.trio.server import serve as ws_serve

                async def handler(ws: Any) -> None:
                    await ws.send(json.dumps({"type": "welcome", "heartbeat_s": 20}))
                    try:
                        async for text in ws:
                            frame = json.loads(text)
                            peers.add(ws)
                            await ws.send(json.dumps({"type": "ack", "id": frame.get("id")}))
                    finally:
                        peers.discard(ws)

                server = await nursery.start(
                    lambda task_status: ws_serve(
                        handler, 0, host="127.0.0.1", compression=None, task_status=task_status
                    )
                )
                port = server.listeners[0].socket.getsockname()[1]
                url = f"ws://127.0.0.1:{port}"
            if gc_mode == "tuned":
                gcpolicy.freeze()
            emit({"url": url})
            stdin = trio.lowlevel.FdStream(os.dup(0))
            buffer = b""
            probes_seen = 0
            while True:
                while b"\n" not in buffer:
                    chunk = await stdin.receive_some()
                    if not chunk:
                        nursery.cancel_scope.cancel()
                        return
                    buffer += chunk
                line, _, buffer = buffer.partition(b"\n")
                words = line.decode().split()
                if words[0] == "stats":
                    times = process.cpu_times()
                    out: dict[str, Any] = {
                        "rss": process.memory_info().rss,
                        "cpu_s": times.user + times.system,
                        "max_lag_ms": lag[0] * 1000,
                    }
                    lag[0] = 0.0
                    if kind == "perfgate":
                        stats = gateway.stats()
                        out["connections"] = stats["connections"]
                        out["probes"] = stats["heartbeat"]["probes"] - probes_seen
                        out["rejected"] = stats["rejected"]
                        probes_seen = stats["heartbeat"]["probes"]
                    emit(out)
                elif words[0] == "pings":  # pings per second over the next N seconds
                    per_s = []
                    for _ in range(int(words[1])):
                        before = gateway.stats()["heartbeat"]["probes"]
                        await trio.sleep(1)
                        per_s.append(gateway.stats()["heartbeat"]["probes"] - before)
                    probes_seen = gateway.stats()["heartbeat"]["probes"]
                    times = process.cpu_times()
                    emit({"per_s": per_s, "cpu_s": times.user + times.system})
                elif words[0] == "publish":
                    spent = []
                    for _ in range(int(words[1])):
                        t = time.time()
                        await gateway.publish(CHANNEL, {"t": t})
                        spent.append((time.time() - t) * 1000)
                        await trio.sleep(float(words[2]))
                    emit({"published": int(words[1]), "publish_call_ms": max(spent)})
                elif words[0] == "snap":
                    import tracemalloc

                    n = max(1, len(gateway._connections))
                    taken = tracemalloc.take_snapshot()
                    snap = taken.statistics("lineno")[:25]
                    by_file = taken.statistics("filename")[:15]
                    total = sum(s.size for s in taken.statistics("filename"))
                    traces = taken.statistics("traceback")[:20]
                    packages: dict[str, int] = {}
                    for stat in taken.statistics("filename"):
                        name = stat.traceback[0].filename
                        if "site-packages/" in name:
                            key = name.split("site-packages/")[1].split("/")[0]
                        elif "/perfgate/" in name:
                            key = "perfgate"
                        else:
                            key = name.split(" ")[0][:40]
                        packages[key] = packages.get(key, 0) + stat.size
                    ours = [
                        s
                        for s in taken.statistics("lineno")
                        if "/perfgate/" in s.traceback[0].filename and s.count >= n / 2
                    ]
                    emit(
                        {
                            "total_per_connection": round(total / n),
                            "sites": [
                                [str(s.traceback[0]), round(s.size / n), s.count] for s in snap
                            ],
                            "files": [[str(s.traceback[0]), round(s.size / n)] for s in by_file],
                            "packages": {
                                k: round(v / n)
                                for k, v in sorted(packages.items(), key=lambda kv: -kv[1])[:12]
                            },
                            "perfgate_sites": [
                                [str(s.traceback[0]), round(s.size / n), s.count] for s in ours
                            ],
                            "traces": [
                                [round(s.size / n), s.count, [str(f) for f in s.traceback]]
                                for s in traces
                            ],
                        }
                    )

    trio.run(main)


# -- the client processes ----------------------------------------------------------------------


def _frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (masked with a zero key: RFC 6455 allows any key)."""
    assert len(payload) < 126
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload


class RawClient(asyncio.Protocol):
    """A deliberately cheap client (a hand-rolled frame reader on an asyncio Protocol), so
    that on a 2-core machine the clients' own work distorts the fan-out latency less."""

    def __init__(self, ready: asyncio.Future[None], latencies: list[float]) -> None:
        self.ready = ready
        self.latencies = latencies
        self.buffer = b""
        self.state = "handshake"
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buffer + data
        if self.state == "handshake":
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                self.buffer = buf
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.transport.abort()
                return
            buf, self.state = rest, "welcome"
        while len(buf) >= 2:
            n, pos = buf[1] & 0x7F, 2
            if n == 126:
                n, pos = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                n, pos = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < pos + n:
                break
            opcode, payload, buf = buf[0] & 0x0F, buf[pos : pos + n], buf[pos + n :]
            if opcode == 0x9:
                self.transport.write(_frame(0xA, payload))
            elif opcode == 0x1 and self.state == "live":
                i = payload.find(b'"t":')
                if i >= 0:
                    j = i + 4
                    while payload[j : j + 1] not in (b",", b"}"):
                        j += 1
                    self.latencies.append((now - float(payload[i + 4 : j])) * 1000)
            elif opcode == 0x1 and self.state == "welcome":
                sub = json.dumps({"op": "subscribe", "id": 1, "channel": CHANNEL}).encode()
                self.transport.write(_frame(0x1, sub))
                self.state = "subscribing"
            elif opcode == 0x1 and self.state == "subscribing" and b'"ack"' in payload:
                self.state = "live"
                self.ready.set_result(None)
        self.buffer = buf


async def clients(url: str, n: int, concurrency: int) -> None:
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    refused = 0

    async def one() -> RawClient:
        nonlocal refused
        while True:
            async with gate:
                ready: asyncio.Future[None] = loop.create_future()
                try:
                    _t, client = await loop.create_connection(
                        partial(RawClient, ready, latencies), host, int(port)
                    )
                    await asyncio.wait_for(ready, 120)
                    return client
                except (TimeoutError, OSError):
                    refused += 1
            await asyncio.sleep(0.5)

    lines = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(lines), sys.stdin)
    while True:
        start = time.time()
        conns = await asyncio.gather(*(one() for _ in range(n)))
        emit({"ready": len(conns), "seconds": time.time() - start, "refused": refused})
        while True:
            line = (await lines.readline()).decode().strip()
            if line == "report":
                emit({"latencies_ms": latencies})
                latencies.clear()
            elif line == "drop":  # vanish at once (no close handshake), then reconnect
                for client in conns:
                    client.transport.abort()
                refused = 0
                await asyncio.sleep(3.0)  # the server's teardown, measured apart
                emit({"dropped": len(conns)})
                break
            else:
                return


# -- the driver --------------------------------------------------------------------------------


class Proc:
    def __init__(self, argv: list[str]) -> None:
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, line: str | None = None) -> Any:
        assert self.p.stdin is not None and self.p.stdout is not None
        if line is not None:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
        out = self.p.stdout.readline()
        if not out:
            raise RuntimeError(f"{self.p.args!r} exited with {self.p.wait()}")
        return json.loads(out)

    def stop(self) -> None:
        self.p.kill()
        self.p.wait()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def drive(args: argparse.Namespace) -> None:
    me = [sys.executable, str(Path(__file__).resolve())]
    server = Proc(
        [*me, "server", args.server, "--gc", args.gc]
        + (["--tracemalloc"] if args.tracemalloc else [])
    )
    url = server.ask()["url"]
    procs = []
    result: dict[str, Any] = {
        "server": args.server,
        "connections": args.connections,
        "gc": args.gc,
    }
    try:
        time.sleep(0.5)
        base = server.ask("stats")
        half = args.connections // 2
        for count in (half, args.connections - half):
            procs.append(Proc([*me, "clients", url, str(count), str(args.concurrency)]))
        ready = [p.ask() for p in procs]
        result["open_s"] = max(r["seconds"] for r in ready)
        time.sleep(2.0)
        opened = server.ask("stats")
        result["rss_per_connection_kib"] = (opened["rss"] - base["rss"]) / args.connections / 1024
        if args.tracemalloc:
            result["top_sites"] = server.ask("snap")
        if args.server == "perfgate":
            idle = server.ask(f"pings {int(args.idle_s)}")
            result["idle_cpu_pct"] = (idle["cpu_s"] - opened["cpu_s"]) / args.idle_s * 100
            result["pings_per_s"] = {"max": max(idle["per_s"]), "total": sum(idle["per_s"])}
            result["publish_call_ms_max"] = server.ask("publish 10 0.5")["publish_call_ms"]
            time.sleep(1.0)
            latencies = [x for p in procs for x in p.ask("report")["latencies_ms"]]
            result["fan_out_ms"] = {
                "deliveries": len(latencies),
                "expected": 10 * args.connections,
                "p50": pct(latencies, 0.5),
                "p99": pct(latencies, 0.99),
                "max": max(latencies),
            }
            server.ask("stats")  # reset the lag watermark
            for p in procs:
                p.p.stdin.write("drop\n")  # type: ignore[union-attr]
                p.p.stdin.flush()  # type: ignore[union-attr]
            for p in procs:
                p.ask()  # dropped
            teardown = server.ask("stats")
            back = [p.ask() for p in procs]
            after = server.ask("stats")
            result["reconnect"] = {
                "teardown_max_loop_lag_ms": teardown["max_lag_ms"],
                "all_back_s": max(r["seconds"] for r in back),
                "client_retries": sum(r["refused"] for r in back),
                "server_max_loop_lag_ms": after["max_lag_ms"],
                "connections": after["connections"],
                "rejected": after["rejected"],
            }
        else:
            before = server.ask("stats")
            time.sleep(args.idle_s)
            after = server.ask("stats")
            result["idle_cpu_pct"] = (after["cpu_s"] - before["cpu_s"]) / args.idle_s * 100
    finally:
        for p in procs:
            p.stop()
        server.stop()
    print(json.dumps(result, indent=1))


def main() -> None:
    raise_fd_limit()
    if len(sys.argv) > 1 and sys.argv[1] == "server":
        gc_mode = sys.argv[sys.argv.index("--gc") + 1] if "--gc" in sys.argv else "tuned"
        serve(sys.argv[2], "--tracemalloc" in sys.argv, gc_mode)
    elif len(sys.argv) > 1 and sys.argv[1] == "clients":
        asyncio.run(clients(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        parser.add_argument("--connections", type=int, default=10_000)
        parser.add_argument("--idle-s", type=float, default=40.0)
        parser.add_argument("--server", choices=("perfgate", "peer"), default="perfgate")
        parser.add_argument("--concurrency", type=int, default=5000)
        parser.add_argument("--tracemalloc", action="store_true")
        parser.add_argument("--gc", choices=("tuned", "default"), default="tuned")
        drive(parser.parse_args())


if __name__ == "__main__":
    main()
