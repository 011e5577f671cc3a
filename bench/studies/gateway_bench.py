"""WebSocket fan-out benchmark: perfgate's gateway against the `websockets` library's
broadcast server, with the same client harness (``bench/studies/_ws_load.py``) in separate client
processes.

    .venv/bin/python bench/studies/gateway_bench.py [--seconds S] [--idle N] [--out DIR]

For each server: 100 and 1,000 subscribers, a paced run (10 msg/s, open loop) for latency,
a flood run (publisher keeps 256 publishes in flight) for delivered messages per second;
then RSS per idle connection at ``--idle`` connections (default 5,000) on a fresh server.
Prints a table and writes ``bench/results/gateway-<timestamp>.json``. Bounded: about three
minutes at the defaults. Absolute figures drift on a shared machine; read the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
LOAD = [PY, str(ROOT / "bench" / "studies" / "_ws_load.py")]
CLIENT_PROCS = 2


def perfgate_server(batch_window_ms: float) -> list[str]:
    settings = {
        "batch_window_ms": batch_window_ms,
        "batch_max": 64,
        "rate_limit_per_s": 0,
        "max_connections": 50_000,
        "history_size": 100,
        "heartbeat_min_s": 20,
        "heartbeat_max_s": 30,
    }
    argv = [PY, "-m", "perfgate.gateway"]
    for key, value in settings.items():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    return argv


def servers(batch_ms: float) -> dict[str, list[str]]:
    return {
        f"perfgate batch={batch_ms:g}ms": perfgate_server(batch_ms),
        "perfgate no batching": perfgate_server(0),
        "websockets broadcast": [PY, str(ROOT / "bench" / "studies" / "_ws_peer.py")],
    }


class Proc:
    def __init__(self, argv: list[str]) -> None:
        self.p = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )

    def read(self) -> Any:
        assert self.p.stdout is not None
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.p.args!r} exited with {self.p.wait()}")
        return json.loads(line)

    def say(self, line: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def fan_out(
    url: str, server: psutil.Process, subscribers: int, seconds: float, run: int
) -> dict[str, Any]:
    channel = f"bench-{subscribers}-{run}"
    per = [
        subscribers // CLIENT_PROCS + (i < subscribers % CLIENT_PROCS) for i in range(CLIENT_PROCS)
    ]
    subs = [Proc([*LOAD, "sub", url, channel, str(n)]) for n in per]
    try:
        for sub in subs:
            sub.read()
        out: dict[str, Any] = {}
        phases = (("warm-up", 10.0, 1.5), ("paced", 10.0, seconds), ("flood", 0.0, seconds * 0.6))
        for phase, rate, span in phases:
            cpu_before = cpu_s(server)
            pub = Proc([*LOAD, "pub", url, channel, str(rate), str(span)])
            result = pub.read()
            pub.stop()
            time.sleep(1.0)  # let the tail of the fan-out arrive
            server_cpu = cpu_s(server) - cpu_before
            reports = []
            for sub in subs:
                sub.say("report")
                reports.append(sub.read())
            if phase == "warm-up":  # connections settle, caches warm: not measured
                continue
            received = sum(r["received"] for r in reports)
            frames = sum(r["frames"] for r in reports)
            latencies = [x for r in reports for x in r["latencies_ms"]]
            last = max((r["last"] for r in reports if r["last"]), default=result["start"])
            expected = result["sent"] * subscribers
            out[phase] = {
                "published": result["sent"],
                "publish_rate": result["sent"] / result["seconds"],
                "delivered": received,
                "lost": expected - received,
                "out_of_order": sum(r["out_of_order"] for r in reports),
                "frames": frames,
                "delivered_per_s": received / max(1e-9, last - result["start"]),
                "send_lag_ms": result["max_lag_ms"],
                "server_cpu_s": server_cpu,
                "server_cpu_us_per_delivery": server_cpu / max(1, received) * 1e6,
                "latency_ms": {
                    "p50": pct(latencies, 0.5),
                    "p90": pct(latencies, 0.9),
                    "p99": pct(latencies, 0.99),
                    "max": max(latencies) if latencies else None,
                },
            }
        return out
    finally:
        for sub in subs:
            with contextlib.suppress(OSError):
                sub.say("quit")
        for sub in subs:
            sub.stop()


def idle_rss(argv: list[str], connections: int) -> dict[str, Any]:
    server = Proc(argv)
    url = server.read()["url"]
    process = psutil.Process(server.p.pid)
    time.sleep(0.5)
    before = process.memory_info().rss
    procs = 4
    clients = [Proc([*LOAD, "idle", url, str(connections // procs)]) for _ in range(procs)]
    try:
        opened = sum(c.read()["ready"] for c in clients)
        time.sleep(2.0)
        after = process.memory_info().rss
    finally:
        for c in clients:
            with contextlib.suppress(OSError):
                c.say("quit")
        for c in clients:
            c.stop()
        server.stop()
    return {
        "connections": opened,
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "bytes_per_connection": (after - before) / max(1, opened),
    }


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="paced run length")
    parser.add_argument("--idle", type=int, default=5000, help="idle connections")
    parser.add_argument("--subscribers", default="100,1000", help="'none': idle test only")
    parser.add_argument("--batch-ms", type=float, default=5.0, help="perfgate batch window")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by children
    SERVERS = servers(args.batch_ms)
    sizes = [int(x) for x in args.subscribers.split(",") if x.strip() not in ("", "none")]
    results: dict[str, Any] = {}
    began = time.time()
    for name, argv in SERVERS.items():
        if not sizes:
            results[name] = {}
            continue
        print(f"[{time.time() - began:5.0f}s] {name}: fan-out", file=sys.stderr, flush=True)
        server = Proc(argv)
        try:
            url = server.read()["url"]
            process = psutil.Process(server.p.pid)
            results[name] = {
                str(n): fan_out(url, process, n, args.seconds, run) for run, n in enumerate(sizes)
            }
        finally:
            server.stop()
    for name, argv in SERVERS.items():
        if name == "perfgate no batching" or args.idle <= 0:
            continue  # same per-connection state as with batching
        print(
            f"[{time.time() - began:5.0f}s] {name}: {args.idle} idle", file=sys.stderr, flush=True
        )
        results[name]["idle"] = idle_rss(argv, args.idle)

    peer = results["websockets broadcast"]
    print()
    header = (
        f"{'server':22} {'subs':>5} | {'paced p50':>9} {'p99 ms':>7} {'lost':>6} | "
        f"{'flood deliv/s':>13} {'vs peer':>7} {'p50 ms':>8} {'p99 ms':>8} {'lost':>7} "
        f"{'frames':>8} {'srv us/msg':>10}"
    )
    print(header)
    print("-" * len(header))
    for name in SERVERS:
        for n in sizes:
            r = results[name][str(n)]
            paced, flood = r["paced"], r["flood"]
            ratio = flood["delivered_per_s"] / peer[str(n)]["flood"]["delivered_per_s"]
            print(
                f"{name:22} {n:>5} | {fmt(paced['latency_ms']['p50']):>9} "
                f"{fmt(paced['latency_ms']['p99']):>7} {paced['lost']:>6} | "
                f"{flood['delivered_per_s']:>13,.0f} {ratio:>6.2f}x "
                f"{fmt(flood['latency_ms']['p50']):>8} {fmt(flood['latency_ms']['p99']):>8} "
                f"{flood['lost']:>7} {flood['frames']:>8} "
                f"{flood['server_cpu_us_per_delivery']:>10.1f}"
            )
    print()
    for name in SERVERS:
        idle = results[name].get("idle")
        if idle:
            print(
                f"{name:22} idle: {idle['connections']} connections, "
                f"{idle['bytes_per_connection'] / 1024:.1f} KiB RSS each "
                f"({idle['rss_before_mb']:.0f} -> {idle['rss_after_mb']:.0f} MiB)"
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / time.strftime("gateway-%Y%m%dT%H%M%S.json")
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version}
    path.write_text(json.dumps({"machine": machine, "args": vars(args), "results": results}))
    print(f"\nwall time {time.time() - began:.0f}s; results in {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
