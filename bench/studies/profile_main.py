"""Where perfgate's main process spends its CPU: per ``GET /healthz`` and per no-op job.

    .venv/bin/python bench/studies/profile_main.py healthz [--seconds 10] [--rounds 3] [--pyspy OUT]
    .venv/bin/python bench/studies/profile_main.py jobs --mode wait|poll|client [--jobs 1000]
                                                    [--concurrency 16] [--pyspy OUT]

``healthz``: ``wrk -t1 -c32`` against perfgate's ``/healthz`` and a Quart-trio hello-world on the
same Hypercorn-trio (``quart_hello.py``), interleaved for ``--rounds`` rounds; prints req/s of
each and the ratio. ``jobs``: the server's own CPU (``psutil`` user + system of the main process,
its workers excluded) over ``--jobs`` no-op ``echo`` jobs from a load process
(``_job_load.py``), in ms per job. ``--pyspy OUT`` records the main process with py-spy during
the (first) measured run: a flame graph for ``.svg``, speedscope for ``.json``, else collapsed
stacks that ``pyspy_top.py`` summarises.
Short and bounded; figures drift on a shared machine: compare runs made together.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


@contextlib.contextmanager
def _server(argv: list[str], ready: Path, log: Path) -> Iterator[dict[str, object]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        info["pid"] = proc.pid
        yield info
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _perfgate(tmp: Path, extra: list[str]) -> contextlib.AbstractContextManager[dict[str, object]]:
    ready = tmp / "perfgate.ready"
    argv = [PY, "-m", "perfgate", "serve", "--http", "127.0.0.1:0", "--ws", "127.0.0.1:0"]
    argv += ["--data-dir", str(tmp / "data"), "--ready-file", str(ready), *extra]
    return _server(argv, ready, tmp / "perfgate.log")


def _pyspy(pid: int, out: str, seconds: float) -> subprocess.Popen[bytes]:
    fmt = "flamegraph" if out.endswith(".svg") else "speedscope" if out.endswith(".json") else "raw"
    argv = ["py-spy", "record", "--pid", str(pid), "-o", out, "-f", fmt, "-r", "200", "--gil"]
    argv += ["-d", str(max(1, round(seconds))), "--nonblocking"]
    bin_dir = Path(PY).parent
    if (bin_dir / "py-spy").exists():
        argv[0] = str(bin_dir / "py-spy")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wrk(url: str, seconds: float) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds:g}s", f"{url}/healthz"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if found is None:
        raise SystemExit(f"wrk said: {out}")
    return float(found.group(1))


def healthz(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="perfgate-profile-") as name:
        tmp = Path(name)
        hello_ready = tmp / "hello.ready"
        hello_argv = [
            PY,
            str(ROOT / "bench/studies/quart_hello.py"),
            "--ready-file",
            str(hello_ready),
        ]
        with (
            _perfgate(tmp, args.serve_args) as perfgate,
            _server(hello_argv, hello_ready, tmp / "hello.log") as hello,
        ):
            _wrk(str(perfgate["http"]), 2)  # warm
            _wrk(str(hello["http"]), 2)
            ours: list[float] = []
            floor: list[float] = []
            for index in range(args.rounds):
                spy = (
                    _pyspy(int(perfgate["pid"]), args.pyspy, args.seconds)
                    if args.pyspy and index == 0
                    else None
                )  # type: ignore[arg-type]
                ours.append(_wrk(str(perfgate["http"]), args.seconds))
                if spy is not None:
                    spy.wait()
                floor.append(_wrk(str(hello["http"]), args.seconds))
    p, h = statistics.median(ours), statistics.median(floor)
    print(
        json.dumps(
            {
                "perfgate_req_s": round(p),
                "quart_hello_req_s": round(h),
                "ratio": round(p / h, 3),
                "rounds": {"perfgate": ours, "quart_hello": floor},
            }
        )
    )


def jobs(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="perfgate-profile-") as name,
        _perfgate(Path(name), args.serve_args) as perfgate,
    ):
        server = psutil.Process(int(perfgate["pid"]))  # type: ignore[call-overload]
        per_job: list[float] = []
        rates: list[float] = []
        for index in range(args.rounds):
            load = subprocess.Popen(
                [
                    PY,
                    str(ROOT / "bench/studies/_job_load.py"),
                    str(perfgate["http"]),
                    args.mode,
                    str(args.jobs),
                    str(args.concurrency),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert load.stdin is not None and load.stdout is not None
            load.stdout.readline()  # warming up
            time.sleep(0.1)
            before = server.cpu_times()
            spy = (
                _pyspy(server.pid, args.pyspy, args.spy_seconds)
                if args.pyspy and index == 0
                else None
            )
            load.stdin.write("\n")
            load.stdin.flush()
            # the warm-up ends when the load process reads stdin; wait for its answer
            result = json.loads(load.stdout.readline())
            after = server.cpu_times()
            load.wait()
            if spy is not None:
                spy.wait()
            cpu_s = (after.user - before.user) + (after.system - before.system)
            per_job.append(cpu_s * 1000 / args.jobs)
            rates.append(args.jobs / result["elapsed_s"])
    print(
        json.dumps(
            {
                "mode": args.mode,
                "cpu_ms_per_job": round(statistics.median(per_job), 3),
                "jobs_per_s": round(statistics.median(rates), 1),
                "rounds_cpu_ms_per_job": [round(x, 3) for x in per_job],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    h = sub.add_parser("healthz")
    h.add_argument("--seconds", type=float, default=10)
    h.add_argument("--rounds", type=int, default=3)
    j = sub.add_parser("jobs")
    j.add_argument("--mode", choices=("wait", "poll", "client"), default="wait")
    j.add_argument("--jobs", type=int, default=1000)
    j.add_argument("--concurrency", type=int, default=16)
    j.add_argument("--rounds", type=int, default=3)
    j.add_argument("--spy-seconds", type=float, default=8)
    for p in (h, j):
        p.add_argument("--pyspy", metavar="OUT")
        p.add_argument(
            "--serve-arg",
            dest="serve_args",
            action="append",
            default=[],
            help="one more argument for 'perfgate serve'",
        )
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    healthz(args) if args.what == "healthz" else jobs(args)


if __name__ == "__main__":
    main()
