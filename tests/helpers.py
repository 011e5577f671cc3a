"""Test helpers shared across the suite (not fixtures)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio

from perfgate.bench.server import perfgate_argv


def all_tasks() -> list[trio.lowlevel.Task]:
    """Every task alive in this trio run, found by walking the tree from the root."""
    found: list[trio.lowlevel.Task] = []
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None:
            continue
        found.append(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return found


def open_fds() -> int:
    return psutil.Process().num_fds()


def inet_connections() -> list[Any]:
    return psutil.Process().net_connections(kind="inet")


PYTHON = sys.executable


def start_server(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout_s: float = 20.0,
    ready_file: Path | None = None,
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Run ``perfgate serve`` as a user would, on free ports; return it and its ready file
    (``ready_file``, or a new one in ``tmp_path``)."""
    stamp = time.monotonic_ns()
    ready = ready_file or tmp_path / f"ready-{stamp}.json"
    # stderr goes to a file, not a pipe: nobody reads a pipe until the server stops, and a
    # chatty server would block on a full one.
    log = open(tmp_path / f"server-{stamp}.log", "w+b")  # noqa: SIM115 - closed by stop_server
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PERFGATE_")}
    full_env.update(env or {})
    proc = subprocess.Popen(
        [*perfgate_argv(str(tmp_path / "data"), str(ready)), *args],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=full_env,
        cwd=tmp_path,
    )
    proc.log = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout_s
    while not (ready.exists() and json.loads(ready.read_text())["pid"] == proc.pid):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {server_log(proc)}")
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError("server did not become ready")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text())


def server_log(proc: subprocess.Popen[bytes]) -> str:
    """Everything the server wrote to stderr so far."""
    log = proc.log  # type: ignore[attr-defined]
    if log.closed:  # stopped already: the text was kept
        return str(proc.log_text)  # type: ignore[attr-defined]
    log.flush()
    log.seek(0)
    return bytes(log.read()).decode(errors="replace")


def stop_server(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> tuple[int, str]:
    """SIGTERM and wait; returns (exit status, stderr)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    err = server_log(proc)
    proc.log_text = err  # type: ignore[attr-defined]
    proc.log.close()  # type: ignore[attr-defined]
    return proc.returncode, err


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted on ``where`` (created) with ``options``, unmounted afterwards; needs
    root. Where it cannot be mounted the test is skipped, except under ``CI=true``: CI runs
    as root, so there a failed mount fails the test instead of hiding it."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        why = f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)
