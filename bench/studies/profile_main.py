"""Where perfgate's main process spends its CPU: per ``GET /healthz`` and per no-op job.

    .venv/bin/python bench/studies/profile_main.py healthz [--seconds 10] [--rounds 3] [--pyspy OUT]
    .venv/bin/python bench/studies/profile_main.py jobs --mode wait|poll|client [--jobs 1000]
                                                    [--concurrency 16] [--pyspy OUT]

``healthz``: ``wrk -t1 -c32`` against perfgate's ``/healthz`` and a Quart-trio hello-world on the
same Hypercorn-trio (``quart_hello.py``), interleaved for ``--rounds`` rounds; prints req/s of
each and their ratio, and each server's CPU per request and their ratio (hello / perfgate:
the req/s ratio the two would have on idle cores; it holds up when the machine is busy). ``jobs``: the server's own CPU (``psutil`` user + system of the main process,
its workers excluded) over ``--jobs`` no-op ``echo`` jobs from a load process
(``_job_load.py``), in ms per job. ``--pyspy OUT`` records the main process with py-spy during
the (first) measured run: a flame graph for ``.svg``, speedscope for ``.json``, else collapsed
stacks that ``pyspy_top.py`` summarises.
Short and bounded; figures drift on a shared machine: compare runs made together
(``--code DIR`` serves another source tree, e.g. main's, for the "before").
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


#: Runs ``perfgate`` from the source tree in argv[1] instead of the installed (editable) one.
_FROM_TREE = (
    "import runpy, sys; tree = sys.argv.pop(1); "
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
    "sys.path.insert(0, tree); sys.argv[0] = 'perfgate'; "
    "runpy.run_module('perfgate', run_name='__main__', alter_sys=True)"
)
CODE: str | None = None


def _perfgate(tmp: Path, extra: list[str]) -> contextlib.AbstractContextManager[dict[str, object]]:
    ready = tmp / "perfgate.ready"
    launcher = ["-m", "perfgate"] if CODE is None else ["-c", _FROM_TREE, CODE]
    argv = [PY, *launcher, "serve", "--http", "127.0.0.1:0", "--ws", "127.0.0.1:0"]
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


def _wrk(url: str, seconds: float, pid: int | None = None) -> tuple[float, float]:
    """``(req/s, server CPU µs per request)`` of one ``wrk -t1 -c32`` run (CPU 0 without
    ``pid``). The CPU figure holds up on a busy machine; req/s does not."""
    server = psutil.Process(pid) if pid is not None else None
    before = server.cpu_times() if server is not None else None
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds:g}s", f"{url}/healthz"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    count = re.search(r"([0-9]+) requests in", out)
    if rate is None or count is None:
        raise SystemExit(f"wrk said: {out}")
    cpu_us = 0.0
    if server is not None and before is not None:
        after = server.cpu_times()
        used_s = (after.user - before.user) + (after.system - before.system)
        cpu_us = used_s * 1e6 / max(1, int(count.group(1)))
    return float(rate.group(1)), cpu_us


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
            ours_pid, hello_pid = int(str(perfgate["pid"])), int(str(hello["pid"]))
            _wrk(str(perfgate["http"]), 2)  # warm
            _wrk(str(hello["http"]), 2)
            ours: list[tuple[float, float]] = []
            floor: list[tuple[float, float]] = []
            for index in range(args.rounds):
                spy = (
                    _pyspy(ours_pid, args.pyspy, args.seconds)
                    if args.pyspy and index == 0
                    else None
                )
                ours.append(_wrk(str(perfgate["http"]), args.seconds, ours_pid))
                if spy is not None:
                    spy.wait()
                floor.append(_wrk(str(hello["http"]), args.seconds, hello_pid))
    p = statistics.median(r for r, _ in ours)
    h = statistics.median(r for r, _ in floor)
    p_cpu = statistics.median(c for _, c in ours)
    h_cpu = statistics.median(c for _, c in floor)
    print(
        json.dumps(
            {
                "perfgate_req_s": round(p),
                "quart_hello_req_s": round(h),
                "ratio": round(p / h, 3),
                "perfgate_cpu_us_per_request": round(p_cpu, 1),
                "quart_hello_cpu_us_per_request": round(h_cpu, 1),
                "cpu_ratio": round(h_cpu / p_cpu, 3),
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
            "--code",
            metavar="DIR",
            help="serve perfgate from this source tree (e.g. 'git archive main perfgate' "
            "unpacked in DIR) to compare before and after in the same conditions",
        )
        p.add_argument(
            "--serve-arg",
            dest="serve_args",
            action="append",
            default=[],
            help="one more argument for 'perfgate serve'",
        )
    args = parser.parse_args()
    global CODE
    CODE = args.code
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    healthz(args) if args.what == "healthz" else jobs(args)


if __name__ == "__main__":
    main()
