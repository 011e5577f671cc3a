"""Start a server under test as a subprocess, wait for its ready file, stop it with SIGTERM.

Used for ``perfgate serve`` and for the peers alike: both take ``--ready-file FILE`` and
write ``{"http": "http://h:p", "ws": "ws://h:p", "pid": N}`` once listening.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class ServerFailed(Exception):
    """The server did not become ready, or did not stop cleanly."""


@attrs.frozen
class Target:
    """Where a system under test listens."""

    name: str
    http_url: str
    ws_url: str
    pid: int | None = None
    #: how the load generator talks to it: "http" (the scenario's own HTTP/WebSocket
    #: client), "perfgate-client" (``perfgate.client``), "celery" or "arq" (their clients)
    client: str = "http"
    #: the Redis URL the "celery" and "arq" clients submit through
    redis_url: str = ""


@attrs.frozen
class PeerOptions:
    """What a peer needs from the bench: its worker count, and Redis for the queue peers."""

    workers: int = 2
    redis_url: str = ""


def perfgate_argv(
    data_dir: str, ready_file: str, test_delay_ms: float = 0.0, broker: str | None = None
) -> list[str]:
    launcher = (
        ["perfgate"] if not test_delay_ms else ["perfgate.bench._delayed", f"{test_delay_ms}"]
    )
    return [
        sys.executable,
        "-m",
        *launcher,
        "serve",
        "--http",
        "127.0.0.1:0",
        "--ws",
        "127.0.0.1:0",
        "--data-dir",
        data_dir,
        "--ready-file",
        ready_file,
        *(["--broker", broker] if broker else []),
    ]


def peer_argv(name: str, ready_file: str, options: PeerOptions | None = None) -> list[str]:
    options = options or PeerOptions()
    argv = [
        sys.executable,
        "-m",
        "perfgate.bench.peers",
        name,
        "--ready-file",
        ready_file,
        "--lifeline-stdin",
        "--workers",
        str(options.workers),
    ]
    if options.redis_url:
        argv += ["--redis", options.redis_url]
    return argv


@asynccontextmanager
async def serving(
    name: str,
    log_dir: Path | None = None,
    test_delay_ms: float = 0.0,
    *,
    label: str | None = None,
    broker: str | None = None,
    peer_options: PeerOptions | None = None,
) -> AsyncIterator[Target]:
    """Run ``perfgate`` (``name == "perfgate"``) or the peer ``name`` for the ``with`` body.

    ``test_delay_ms`` (tests only) starts perfgate with that CPU cost per HTTP request
    (:mod:`perfgate.bench._delayed`); ``broker`` starts it with ``--broker``; ``label`` names
    the target and its log (default: ``name``); ``peer_options`` go to a peer's command line.

    Waits up to :data:`READY_TIMEOUT_S` for the ready file (raising :class:`ServerFailed` with
    the tail of the server's stderr if it exits or times out). On exit sends SIGTERM and waits
    up to :data:`STOP_TIMEOUT_S`, then SIGKILLs; the exit is shielded from cancellation, so
    the server never outlives the block. A non-zero exit after SIGTERM raises ServerFailed.
    """
    label = label or name
    with tempfile.TemporaryDirectory(prefix=f"perfgate-bench-{label}-") as tmp:
        ready_file = Path(tmp) / "ready.json"
        argv = (
            perfgate_argv(str(Path(tmp) / "data"), str(ready_file), test_delay_ms, broker)
            if name == "perfgate"
            else peer_argv(name, str(ready_file), peer_options)
        )
        log_path = (log_dir or Path(tmp)) / f"{label}.stderr.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            # a peer's stdin is its lifeline: if this process dies (even by SIGKILL) the pipe
            # closes and the peer exits instead of lingering on its port
            stdin = subprocess.DEVNULL if name == "perfgate" else subprocess.PIPE
            process = await trio.lowlevel.open_process(argv, stdin=stdin, stdout=log, stderr=log)
            try:
                target = await _wait_ready(label, process, ready_file, log_path)
                yield target
            finally:
                with trio.CancelScope(shield=True):
                    code = await _stop(process)
            if code != 0:
                raise ServerFailed(
                    f"{label} exited {code} after SIGTERM; see {log_path}:\n{_tail(log_path)}"
                )


async def _wait_ready(name: str, process: trio.Process, ready_file: Path, log_path: Path) -> Target:
    with trio.move_on_after(READY_TIMEOUT_S):
        while True:
            if process.returncode is not None:
                raise ServerFailed(
                    f"{name} exited {process.returncode} before ready:\n{_tail(log_path)}"
                )
            ready = await trio.to_thread.run_sync(_read_ready, ready_file)
            if ready is not None:
                return Target(
                    name,
                    ready.get("http", ""),
                    ready.get("ws", ""),
                    ready.get("pid"),
                    client=ready.get("client", "http"),
                    redis_url=ready.get("redis", ""),
                )
            await trio.sleep(0.05)
    raise ServerFailed(f"{name} not ready after {READY_TIMEOUT_S:g}s:\n{_tail(log_path)}")


async def _stop(process: trio.Process) -> int:
    # SIGTERM first; the lifeline closes only after the exit, or a peer would see both
    try:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            with trio.move_on_after(STOP_TIMEOUT_S):
                return await process.wait()
            process.kill()
        return await process.wait()
    finally:
        if process.stdin is not None:
            await process.stdin.aclose()


def _read_ready(path: Path) -> dict[str, Any] | None:
    # the writer renames a complete file into place, so existing means complete
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    if not isinstance(data, dict):
        raise ServerFailed(f"ready file {path} is not a JSON object")
    return data


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
