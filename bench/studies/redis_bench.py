"""Cross-instance fan-out through Redis against one instance with the in-process hub.

    .venv/bin/python bench/studies/redis_bench.py [--subscribers N] [--rate R] [--seconds S] [--runs K]

Setups, both up for the whole run (runs interleaved ABBA, medians reported):

* ``memory``: one ``perfgate serve`` (default broker); publisher and subscribers on it.
* ``redis x2``: a ``redis-server`` on a free port and two ``perfgate serve --broker redis://``;
  the publisher on instance A, every subscriber on instance B, so each message crosses Redis.

Per run: a paced phase (open loop at ``--rate`` msg/s; latency from each message's scheduled
send time to its delivery, so a stall is charged to everything it delayed) and a flood phase
(publisher keeps 256 publishes unacknowledged) for delivered messages per second. The load
comes from separate client processes (``bench/studies/_ws_load.py``, shared with gateway_bench.py).
Prints a table and writes ``bench/results/redis-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway_bench import CLIENT_PROCS, LOAD, PY, ROOT, Proc, pct

CONFIG = """
[gateway]
rate_limit_per_s = 0
max_connections = 50000
history_size = 100
heartbeat_min_s = 20
heartbeat_max_s = 30
batch_window_ms = 5
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    proc = subprocess.Popen(
        [*argv, "no", "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def perfgate(home: Path, *extra: str) -> Iterator[str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "perfgate.toml").write_text(CONFIG)
    ready = home / "ready.json"
    argv = [PY, "-m", "perfgate", "serve", "--config", str(home / "perfgate.toml")]
    argv += ["--http", "127.0.0.1:0", "--ws", "127.0.0.1:0", "--data-dir", str(home / "data")]
    proc = subprocess.Popen(
        [*argv, "--ready-file", str(ready), "--log-level", "warning", *extra], cwd=home
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("perfgate did not start")
            time.sleep(0.05)
        yield str(json.loads(ready.read_text())["ws"])
    finally:
        proc.terminate()
        proc.wait(30)


def one_run(
    pub_url: str, sub_url: str, subscribers: int, rate: float, seconds: float, run: int
) -> dict[str, Any]:
    channel = f"bench-{run}"
    per = [subscribers // CLIENT_PROCS + (i < subscribers % CLIENT_PROCS) for i in range(2)]
    subs = [Proc([*LOAD, "sub", sub_url, channel, str(n)]) for n in per]
    out: dict[str, Any] = {}
    try:
        for sub in subs:
            sub.read()
        for phase, phase_rate, span in (("paced", rate, seconds), ("flood", 0.0, seconds)):
            pub = Proc([*LOAD, "pub", pub_url, channel, str(phase_rate), str(span)])
            result = pub.read()
            pub.stop()
            time.sleep(1.0 if phase == "paced" else 3.0)  # the tail of the fan-out
            reports = []
            for sub in subs:
                sub.say("report")
                reports.append(sub.read())
            received = sum(r["received"] for r in reports)
            latencies = [x for r in reports for x in r["latencies_ms"]]
            last = max((r["last"] for r in reports if r["last"]), default=result["start"])
            out[phase] = {
                "published": result["sent"],
                "delivered": received,
                "lost": result["sent"] * subscribers - received,
                "out_of_order": sum(r["out_of_order"] for r in reports),
                "delivered_per_s": received / max(1e-9, last - result["start"]),
                "send_lag_ms": result["max_lag_ms"],
                "p50_ms": pct(latencies, 0.5),
                "p99_ms": pct(latencies, 0.99),
                "max_ms": max(latencies, default=None),
            }
    finally:
        for sub in subs:
            with contextlib.suppress(Exception):
                sub.say("quit")
            sub.stop()
    return out


def median_of(runs: list[dict[str, Any]], phase: str, key: str) -> float | None:
    values = [r[phase][key] for r in runs if r[phase][key] is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=4, help="ABBA order; even is best")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"memory": [], "redis x2": []}
    with tempfile.TemporaryDirectory(prefix="perfgate-redis-bench-") as tmp:
        base = Path(tmp)
        with (
            redis_server(base / "redis") as url,
            perfgate(base / "mem") as mem_ws,
            perfgate(base / "a", "--broker", url) as a_ws,
            perfgate(base / "b", "--broker", url) as b_ws,
        ):
            urls = {"memory": (mem_ws, mem_ws), "redis x2": (a_ws, b_ws)}
            order = ["memory", "redis x2", "redis x2", "memory"]
            for i in range(args.runs):
                name = order[i % 4]
                pub_url, sub_url = urls[name]
                print(f"run {i + 1}/{args.runs}: {name}", file=sys.stderr)
                runs[name].append(
                    one_run(pub_url, sub_url, args.subscribers, args.rate, args.seconds, i)
                )
    summary = {
        name: {
            "paced_p50_ms": median_of(rs, "paced", "p50_ms"),
            "paced_p99_ms": median_of(rs, "paced", "p99_ms"),
            "paced_lost": sum(r["paced"]["lost"] for r in rs),
            "flood_delivered_per_s": median_of(rs, "flood", "delivered_per_s"),
            "flood_lost": sum(r["flood"]["lost"] for r in rs),
            "out_of_order": sum(r[p]["out_of_order"] for r in rs for p in ("paced", "flood")),
        }
        for name, rs in runs.items()
    }
    mem, red = summary["memory"], summary["redis x2"]
    ratios = {
        key: (red[key] / mem[key]) if mem[key] and red[key] is not None else None
        for key in ("paced_p50_ms", "paced_p99_ms", "flood_delivered_per_s")
    }
    print(f"{'setup':<10} {'p50 ms':>8} {'p99 ms':>8} {'deliv/s':>10} {'lost':>6} {'ooo':>5}")
    for name, s in summary.items():
        print(
            f"{name:<10} {s['paced_p50_ms'] or 0:8.2f} {s['paced_p99_ms'] or 0:8.2f} "
            f"{s['flood_delivered_per_s'] or 0:10.0f} {s['paced_lost'] + s['flood_lost']:6d} "
            f"{s['out_of_order']:5d}"
        )
    print("redis/memory:", {k: None if v is None else round(v, 2) for k, v in ratios.items()})
    document = {
        "command": " ".join([Path(PY).name, *sys.argv]),
        "args": vars(args),
        "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
        "summary": summary,
        "ratios_redis_over_memory": ratios,
        "runs": runs,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"redis-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(document, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
