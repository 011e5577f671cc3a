"""Child process groups: start one, describe how it ended, and stop it without leaking it.

Every child the pool starts (a worker or a command shim) leads its own process group, so one
``killpg`` reaches it and anything it started, and a terminal's Ctrl-C reaches only the server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import trio

STOP_DEADLINE_S = 2.0
"""How long to wait for a SIGKILLed group to be reaped before giving up on it (should be ~0)."""


def child_env() -> dict[str, str]:
    """The environment of a child Python: ours, with our import path, so that it imports the
    same modules (task targets included) as the server does."""
    env = dict(os.environ)
    paths = [p for p in sys.path if p]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


async def spawn_group(argv: Sequence[str], *, stderr: int | None = None) -> trio.Process:
    """Start ``argv`` as the leader of a new process group, stdin/stdout piped.

    Not cancellable part-way: the fork happens in a thread, and the process is returned even if
    the caller was cancelled meanwhile (the cancellation arrives at its next checkpoint), so the
    caller can always stop what it started.
    """
    return await trio.lowlevel.open_process(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        process_group=0,
        env=child_env(),
    )


def signal_group(process: trio.Process, signum: int) -> None:
    """Send ``signum`` to the process's group; a group that is already gone is not an error."""
    # PermissionError: on some kernels a group whose members are all zombies answers EPERM.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def describe_exit(returncode: int) -> dict[str, Any]:
    """``{"exit_code": N}`` or ``{"signal": "SIGKILL"}``, with a message, for an error dict."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return {"signal": name, "message": f"killed by {name}"}
    return {"exit_code": returncode, "message": f"exited with code {returncode}"}


async def stop_group(process: trio.Process, *, grace_s: float) -> None:
    """SIGTERM the group, SIGKILL it after ``grace_s``, reap the leader, close the pipes.

    Runs shielded, so it completes even in a cancelled scope (this is the cleanup path); it
    takes at most ``grace_s`` plus a short reap deadline. Safe to call twice, and on a process
    that has already exited (its group is still swept, in case something it started lingers).
    """
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            signal_group(process, signal.SIGTERM)
            with trio.move_on_after(grace_s):
                await process.wait()
        # Close the lifeline too: a shim that survived SIGTERM then kills its group itself.
        await _close_pipes(process)
        signal_group(process, signal.SIGKILL)
        with trio.move_on_after(STOP_DEADLINE_S):
            await process.wait()


async def _close_pipes(process: trio.Process) -> None:
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            await trio.aclose_forcefully(stream)
