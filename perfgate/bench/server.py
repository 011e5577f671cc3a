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


def perfgate_argv(data_dir: str, ready_file: str, test_delay_ms: float = 0.0) -> list[str]:
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
    ]


def peer_argv(name: str, ready_file: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "perfgate.bench.peers",
        name,
        "--ready-file",
        ready_file,
        "--lifeline-stdin",
    ]


@asynccontextmanager
async def serving(
    name: str, log_dir: Path | None = None, test_delay_ms: float = 0.0
) -> AsyncIterator[Target]:
    """Run ``perfgate`` (``name == "perfgate"``) or the peer ``name`` for the ``with`` body.

    ``test_delay_ms`` (tests only) starts perfgate with that CPU cost per HTTP request
    (:mod:`perfgate.bench._delayed`).

    Waits up to :data:`READY_TIMEOUT_S` for the ready file (raising :class:`ServerFailed` with
    the tail of the server's stderr if it exits or times out). On exit sends SIGTERM and waits
    up to :data:`STOP_TIMEOUT_S`, then SIGKILLs; the exit is shielded from cancellation, so
    the server never outlives the block. A non-zero exit after SIGTERM raises ServerFailed.
    """
    with tempfile.TemporaryDirectory(prefix=f"perfgate-bench-{name}-") as tmp:
        ready_file = Path(tmp) / "ready.json"
        argv = (
            perfgate_argv(str(Path(tmp) / "data"), str(ready_file), test_delay_ms)
            if name == "perfgate"
            else peer_argv(name, str(ready_file))
        )
        log_path = (log_dir or Path(tmp)) / f"{name}.stderr.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            # a peer's stdin is its lifeline: if this process dies (even by SIGKILL) the pipe
            # closes and the peer exits instead of lingering on its port
            stdin = subprocess.DEVNULL if name == "perfgate" else subprocess.PIPE
            process = await trio.lowlevel.open_process(argv, stdin=stdin, stdout=log, stderr=log)
            try:
                target = await _wait_ready(name, process, ready_file, log_path)
                yield target
            finally:
                with trio.CancelScope(shield=True):
                    code = await _stop(process)
            if code != 0:
                raise ServerFailed(
                    f"{name} exited {code} after SIGTERM; see {log_path}:\n{_tail(log_path)}"
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
                return Target(name, ready["http"], ready["ws"], ready.get("pid"))
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
