"""``perfgate bench`` and ``perfgate gate``: argument parsing, the terminal, the files.

``bench_main(argv)`` and ``gate_main(argv)`` return the process exit code:
0 pass, 1 regression, 2 inconclusive or invalid input (also: the harness could not run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import platform
import random
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfgate.bench import comparable, gate, results

if TYPE_CHECKING:
    from perfgate.bench.server import Target

# `perfgate gate` imports only gate/results/stats; trio, the harness and matplotlib load
# only for `perfgate bench`.
DEFAULT_OUT = Path("bench/results")
SCENARIO_NAMES = ("http", "jobs", "jobs-throughput", "ws-fanout", "ws-churn", "ws-idle")
#: What `perfgate bench` imports beyond perfgate's runtime dependencies: the `bench` extra
#: in pyproject.toml (module name -> distribution name).
BENCH_MODULES = {
    "hdrh": "hdrhistogram",
    "rich": "rich",
    "matplotlib": "matplotlib",
    "uvicorn": "uvicorn",
    "websockets": "websockets",
    "h11": "h11",
    "celery": "celery",
    "arq": "arq",
}


def missing_bench_packages() -> list[str]:
    """The bench extra's packages that cannot be imported here."""
    missing = []
    for module, package in BENCH_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    return missing


def _bench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="perfgate bench",
        description="Open-loop latency benchmarks (wrk2-style), optionally against peer stacks, "
        "gated against a baseline result.",
    )
    p.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"scenarios to run (default: all of {', '.join(SCENARIO_NAMES)})",
    )
    p.add_argument("--target", help="benchmark a running server: its HTTP URL, or its --ready-file")
    p.add_argument("--target-ws", help="WebSocket URL of --target (when --target is a URL)")
    p.add_argument(
        "--subject",
        default="perfgate",
        help="system under test when no --target: 'perfgate' (default) or a peer name, "
        "e.g. to check the harness against a reference stack",
    )
    p.add_argument("--peers", action="store_true", help="also measure the reference stacks")
    p.add_argument(
        "--peer",
        action="append",
        metavar="NAME",
        help="measure only this peer or perfgate variant (repeatable; implies --peers), "
        "e.g. --peer celery --peer perfgate-redis",
    )
    p.add_argument("--runs", type=int, default=7, help="repeated runs per scenario and system (7)")
    p.add_argument("--duration", type=float, default=2.0, help="seconds per run (2)")
    p.add_argument(
        "--warmup", type=float, default=1.0, help="unrecorded warm-up seconds per system (1)"
    )
    p.add_argument(
        "--rate",
        type=float,
        help="offered requests (publishes) per second; "
        "default per scenario: http 200, jobs 20, ws-fanout 50, ws-churn 20 "
        "(jobs-throughput and ws-idle are closed loop)",
    )
    p.add_argument("--connections", type=int, help="concurrent connections (default per scenario)")
    p.add_argument("--subscribers", type=int, help="ws-fanout subscribers (20)")
    p.add_argument(
        "--idle-connections",
        type=int,
        default=2000,
        help="ws-idle: connections held open, welcome + one subscription each (2000)",
    )
    p.add_argument(
        "--idle-window",
        type=float,
        default=5.0,
        help="ws-idle: seconds over which the server's idle CPU is measured (5)",
    )
    p.add_argument("--timeout", type=float, default=2.0, help="per-request timeout in seconds (2)")
    p.add_argument("--processes", type=int, default=2, help="client processes (2)")
    p.add_argument(
        "--closed-loop",
        action="store_true",
        help="CLOSED LOOP: send when the previous answer arrived (hides stalls; "
        "for comparison only, results are labelled closed-loop)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result directory (bench/results)")
    p.add_argument("--baseline", type=Path, help="gate the result against this baseline file")
    p.add_argument("--write-baseline", type=Path, help="also copy the result to this file")
    # TEST ONLY (the bench's own tests): start perfgate with this CPU cost per HTTP request
    p.add_argument("--test-only-delay-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    return p


def _target(args: argparse.Namespace) -> Target | None:
    from perfgate.bench.server import Target

    if not args.target:
        return None
    path = Path(args.target)
    if path.is_file():
        ready = json.loads(path.read_text())
        return Target("target", ready["http"], ready["ws"], ready.get("pid"))
    if not args.target.startswith("http://"):
        raise ValueError("expected http://HOST:PORT or an existing ready file")
    ws = args.target_ws or ""
    return Target("target", args.target.rstrip("/"), ws)


def raise_open_files_limit() -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit (the servers and load
    generators the bench starts inherit it); returns the soft limit now in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)


def bench_main(argv: list[str]) -> int:
    args = _bench_parser().parse_args(argv)
    missing = missing_bench_packages()
    if missing:
        print(
            f"perfgate bench: needs the bench extra (missing: {', '.join(missing)}): "
            "pip install 'perfgate[bench]'",
            file=sys.stderr,
        )
        return 2
    import trio

    from perfgate.bench import terminal
    from perfgate.bench.report import write_report
    from perfgate.bench.runner import RunFailed
    from perfgate.bench.scenarios import SCENARIOS
    from perfgate.bench.server import ServerFailed
    from perfgate.bench.suite import SuiteOptions, run_suite, server_settings

    scenarios = tuple(args.scenarios) or SCENARIO_NAMES
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        print(
            f"perfgate bench: unknown scenario(s) {', '.join(unknown)}; "
            f"known: {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    if (
        args.runs < 1
        or args.duration <= 0
        or args.processes < 1
        or args.idle_connections < 1
        or args.idle_window <= 0
    ):
        print(
            "perfgate bench: --runs, --duration, --processes, --idle-connections and "
            "--idle-window must be positive",
            file=sys.stderr,
        )
        return 2
    files_needed = args.idle_connections + 1024 if "ws-idle" in scenarios else 0
    files_allowed = raise_open_files_limit()
    if files_needed > files_allowed:
        print(
            f"perfgate bench: ws-idle with {args.idle_connections} connections needs about "
            f"{files_needed} open files; the limit is {files_allowed} (raise `ulimit -n`)",
            file=sys.stderr,
        )
        return 2
    from perfgate.bench.peers import PEERS
    from perfgate.bench.suite import VARIANTS

    unknown_peers = [p for p in args.peer or () if p not in PEERS and p not in VARIANTS]
    if unknown_peers:
        print(
            f"perfgate bench: unknown peer(s) {', '.join(unknown_peers)}; "
            f"known: {', '.join([*PEERS, *VARIANTS])}",
            file=sys.stderr,
        )
        return 2
    if args.subject != "perfgate" and args.subject not in PEERS:
        print(
            f"perfgate bench: --subject must be perfgate or one of {', '.join(PEERS)}",
            file=sys.stderr,
        )
        return 2
    baseline: dict[str, Any] | None = None
    baseline_missing = args.baseline is not None and not args.baseline.exists()
    if args.baseline is not None and not baseline_missing:
        try:
            baseline = results.read(args.baseline)
        except results.ResultError as exc:
            print(f"perfgate bench: baseline: {exc}", file=sys.stderr)
            return 2
    try:
        target = _target(args)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(
            f"perfgate bench: --target {args.target}: not a URL or a ready file ({exc!r})",
            file=sys.stderr,
        )
        return 2
    now = dt.datetime.now(dt.UTC)
    stamp = results.timestamp_name(now)
    options = SuiteOptions(
        scenarios=scenarios,
        runs=args.runs,
        duration_s=args.duration,
        warmup_s=args.warmup,
        rate_per_s=args.rate,
        connections=args.connections,
        subscribers=args.subscribers,
        timeout_s=args.timeout,
        processes=args.processes,
        closed_loop=args.closed_loop,
        peers=args.peers or bool(args.peer),
        only_peers=tuple(args.peer) if args.peer else None,
        subject=args.subject,
        target=target,
        log_dir=args.out / f"{stamp}-logs",
        idle_connections=args.idle_connections,
        idle_window_s=args.idle_window,
        pool_workers=int(server_settings().get("pool_max_workers", 4)),
        test_delay_ms=args.test_only_delay_ms,
    )
    if baseline is not None:
        subject_name = args.subject if target is None else target.name
        refusal = comparable.settings_difference(
            baseline, options.record(subject_name), platform.python_version(), scenarios
        )
        if refusal is not None:  # said before minutes of measuring, not after
            print(f"perfgate bench: not comparable with the baseline: {refusal}", file=sys.stderr)
            return 2
    if args.test_only_delay_ms:
        print(
            f"perfgate bench: TEST ONLY: perfgate delays every HTTP request by "
            f"{args.test_only_delay_ms:g} ms in this run",
            file=sys.stderr,
        )
    try:
        result = terminal.with_progress(
            options,
            lambda progress: trio.run(lambda: run_suite(options, progress, now=lambda: now)),
        )
    except (ServerFailed, RunFailed) as exc:
        print(f"perfgate bench: could not measure: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("perfgate bench: interrupted", file=sys.stderr)
        return 2

    gate_lines: list[str] = []
    code = 0
    if baseline is not None:
        report = gate.evaluate(baseline, result, scenarios=list(scenarios))
        gate_lines = report.lines()
        code = report.exit_code
        result["gate"] = {"baseline": str(args.baseline), "exit_code": code, "lines": gate_lines}
    elif baseline_missing:
        gate_lines = [
            f"gate: INCONCLUSIVE (no baseline at {args.baseline}; "
            "`make bench-baseline` writes one, see bench/README.md)"
        ]
        code = 2
    problems = gate.result_problems(result)
    if baseline is None:
        gate_lines = [f"INCONCLUSIVE {p}" for p in problems] + gate_lines
        if problems:
            code = 2
    json_path = results.write(result, args.out / f"{stamp}.json")
    html_path = write_report(result, args.out / f"{stamp}.html", gate_lines, baseline)
    baseline_written = False
    if args.write_baseline is not None and not problems:
        args.write_baseline.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(json_path, args.write_baseline)
        baseline_written = True
    if code == 0 and options.log_dir is not None:
        shutil.rmtree(options.log_dir, ignore_errors=True)  # server logs matter only on failure
    terminal.print_table(result)
    for line in gate_lines:
        print(line)
    if baseline is None and not baseline_missing:
        print("gate: not run (no --baseline)")
    print(f"results: {json_path}\nreport:  {html_path}")
    if baseline_written:
        print(f"baseline: wrote {args.write_baseline}")
    elif args.write_baseline is not None:
        print(f"baseline: NOT written to {args.write_baseline}: the result has problems (above)")
    return code


def power_main(argv: list[str]) -> int:
    from perfgate.bench import power

    p = argparse.ArgumentParser(
        prog="perfgate gate --power",
        description="How often the gate catches a regression, and how often it fails an A/A "
        "pair, resampling the runs of recorded results (record them with many runs, "
        "e.g. perfgate bench --peers --runs 14).",
    )
    p.add_argument("results", type=Path, nargs="+", metavar="RESULT")
    p.add_argument("--trials", type=int, default=200, help="pairs of each kind (200)")
    p.add_argument("--regression", type=float, default=1.30, help="injected slowdown (1.30)")
    p.add_argument("--seed", type=int, default=0, help="RNG seed of the random halves (0)")
    args = p.parse_args(argv)
    if args.trials < 1 or args.regression <= 0:
        print("perfgate gate --power: --trials and --regression must be positive", file=sys.stderr)
        return 2
    try:
        docs = [results.read(path) for path in args.results]
        for doc in docs[1:]:
            refusal = comparable.settings_difference(
                docs[0], doc.get("settings"), doc["machine"].get("python"), list(doc["scenarios"])
            )
            if refusal is not None:
                raise ValueError(f"not comparable: {refusal}")
        report = power.check(
            power.merge(docs),
            trials=args.trials,
            rng=random.Random(args.seed),
            regression=args.regression,
        )
    except (results.ResultError, ValueError) as exc:
        print(f"perfgate gate --power: {exc}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line)
    return 0


def gate_main(argv: list[str]) -> int:
    if argv and argv[0] == "--power":
        return power_main(argv[1:])
    p = argparse.ArgumentParser(
        prog="perfgate gate",
        description="Compare two bench result files; exit 0 pass, 1 regression, "
        "2 inconclusive or invalid input. (`perfgate gate --power RESULT...` estimates the "
        "gate's power from recorded runs.)",
    )
    p.add_argument("baseline", type=Path)
    p.add_argument("current", type=Path)
    args = p.parse_args(argv)
    try:
        baseline, current = results.read(args.baseline), results.read(args.current)
    except results.ResultError as exc:
        print(f"perfgate gate: {exc}", file=sys.stderr)
        return gate.EXIT_INCONCLUSIVE
    report = gate.evaluate(baseline, current)
    for line in report.lines():
        print(line)
    return report.exit_code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return bench_main(argv[1:])
    if argv and argv[0] == "gate":
        return gate_main(argv[1:])
    print("usage: python -m perfgate.bench.cli {bench|gate} ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
