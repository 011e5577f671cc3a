"""The ``perfgate`` command: ``serve``, ``bench`` and ``gate``.

Exit codes: 0 success; 1 a gate regression (``bench``/``gate``); 2 bad usage or invalid
configuration, always reported as one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from perfgate import __version__
from perfgate.errors import ConfigError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other usage error perfgate reports.
        self.exit(EXIT_USAGE, f"perfgate: error: {message} (see 'perfgate --help')\n")


def _parser() -> _Parser:
    parser = _Parser(prog="perfgate", description="A realtime job gateway on trio.")
    parser.add_argument("--version", action="version", version=f"perfgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = sub.add_parser("serve", help="run the service until SIGINT/SIGTERM")
    serve.add_argument("--config", metavar="FILE", help="TOML file (default: ./perfgate.toml)")
    serve.add_argument("--http", metavar="HOST:PORT", help="HTTP bind (port 0: any free port)")
    serve.add_argument("--ws", metavar="HOST:PORT", help="WebSocket bind (port 0: any free port)")
    serve.add_argument("--data-dir", metavar="DIR", help="where the journal and cache live")
    serve.add_argument("--broker", metavar="URL", help="memory:// (default) or redis://HOST:PORT/N")
    serve.add_argument("--ready-file", metavar="FILE", help="write bound URLs here once ready")
    serve.add_argument("--log-format", choices=("text", "json"), help="log line format")
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    serve.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow a non-loopback bind with no auth tokens configured",
    )

    bench = sub.add_parser("bench", help="run latency benchmarks and gate against a baseline")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    gate = sub.add_parser("gate", help="compare two bench results; exit 1 on regression")
    gate.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    flags: dict[str, dict[str, Any]] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            flags.setdefault(section, {})[key] = value

    put("http", "bind", args.http)
    put("gateway", "bind", args.ws)
    put("store", "data_dir", args.data_dir)
    put("server", "broker", args.broker)
    put("server", "log_format", args.log_format)
    put("server", "log_level", args.log_level)
    put("server", "insecure", args.insecure)
    return flags


def _serve(args: argparse.Namespace) -> int:
    # Imported here so that `perfgate gate` does not pay for trio, quart and hypercorn.
    import trio

    from perfgate import gcpolicy
    from perfgate.config import load_config
    from perfgate.jobs.scheduler import check_schedules
    from perfgate.logs import configure_logging
    from perfgate.notify import Notifier
    from perfgate.pool.preflight import check_tasks
    from perfgate.supervisor import Supervisor

    config_path = args.config or os.environ.get("PERFGATE_CONFIG")
    config = load_config(config_path, overrides=_overrides(args))
    config.check_exposure()
    check_schedules(config)
    check_tasks(config.tasks)  # a broken target or program: exit 2 now, not 202 then a failure
    configure_logging(config.server.log_format, config.server.log_level)
    ready_file = Path(args.ready_file) if args.ready_file else None
    supervisor = Supervisor(
        config,
        ready_file=ready_file,
        notify=Notifier.from_environ(os.environ),
        on_ready=gcpolicy.freeze,
    )
    gcpolicy.tune()
    trio.run(supervisor.run)
    return 0


def _startup_error(exc: BaseException) -> str | None:
    """A one-line message for an expected start-up failure, found inside exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _startup_error(inner)
            if found is not None:
                return found
        return None
    if isinstance(exc, ConfigError):
        return f"configuration error: {exc.message}"
    if isinstance(exc, OSError):
        # Typically a bind that failed: address in use, or permission denied.
        return f"error: {exc.strerror or exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # bench and gate own their arguments (options may come first): hand them over whole.
    if argv and argv[0] == "bench":
        from perfgate.bench.cli import bench_main

        return bench_main(argv[1:])
    if argv and argv[0] == "gate":
        from perfgate.bench.cli import gate_main

        return gate_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
    except (ConfigError, OSError, BaseExceptionGroup) as exc:
        leaf = _startup_error(exc)
        if leaf is None:
            raise
        print(f"perfgate: {leaf}", file=sys.stderr)
        return EXIT_USAGE
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main())
