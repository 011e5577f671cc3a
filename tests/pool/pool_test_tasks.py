"""Tasks that misbehave on purpose, run by real workers in the pool tests (target "pool_test_tasks:NAME")."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from perfgate.pool import PermanentError


def pid(ctx: Any, exit_code: int | None = None, hang: bool = False) -> int:
    """Our pid; or, when asked, crash or hang (a short task that misbehaves once)."""
    if exit_code is not None:
        os._exit(exit_code)
    while hang:
        time.sleep(1)
    return os.getpid()


def chatty(ctx: Any, lines: int = 3) -> str:
    for i in range(lines):
        ctx.log(f"line {i}")
    ctx.progress(0.5, "half")
    print("a stray print must not break the protocol")
    return "ok"


def boom(ctx: Any, message: str = "boom") -> None:
    raise RuntimeError(message)


def boom_permanent(ctx: Any) -> None:
    raise PermanentError("bad input, do not retry")


def not_json(ctx: Any) -> Any:
    return {1, 2, 3}


def segfault(ctx: Any) -> None:
    ctypes.string_at(0)


def hard_exit(ctx: Any, code: int = 3) -> None:
    os._exit(code)


def self_kill(ctx: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def hang(ctx: Any, pid_file: str = "") -> None:
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    while True:
        time.sleep(1)


def spawn_and_hang(ctx: Any, pid_file: str) -> None:
    """Start a grandchild, record both pids, and block: the pool must stop both."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(pid_file).write_text(f"{os.getpid()} {child.pid}")
    while True:
        time.sleep(1)


def flaky(ctx: Any, counter_file: str, failures: int) -> int:
    """Fail (with a crash on the first attempt, an exception after) ``failures`` times."""
    path = Path(counter_file)
    count = int(path.read_text()) if path.exists() else 0
    path.write_text(str(count + 1))
    if count < failures:
        if count == 0:
            os._exit(9)
        raise RuntimeError(f"attempt {count + 1} fails")
    return count + 1


_ballast: list[bytes] = []


def grow(ctx: Any, mb: int) -> int:
    _ballast.append(os.urandom(mb * 1024 * 1024))
    return os.getpid()


def touch(ctx: Any, path: str) -> int:
    Path(path).write_text("ran")
    return os.getpid()


def spawn_and_exit(ctx: Any, pid_file: str) -> None:
    """Start a grandchild that does not hold our stdin, record its pid, and die at once."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], stdin=subprocess.DEVNULL
    )
    Path(pid_file).write_text(str(child.pid))
    os._exit(1)
