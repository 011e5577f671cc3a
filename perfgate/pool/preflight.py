"""Check the configured tasks before serving: every Python target imports and is callable,
every command's program resolves. ``perfgate serve`` exits 2 with one line naming the first
task that cannot run, instead of accepting its jobs (202) and failing each in a worker.

Why a child process: importing a task's module runs its top-level code, which may open
connections, start threads or read files; that belongs in a worker, never in the server. All
targets are checked in *one* short-lived child (``python -c``, the workers' interpreter and
import path), so the cost is one interpreter start and the imports a worker would pay anyway,
not one start per task. The child reports each target as it goes, so a module whose import
hangs is named when the check times out (:data:`CHECK_TIMEOUT_S`).

A command's program is checked as the shim will run it: a path must be an executable file;
a bare name must be found on ``PATH``. A program given as a ``{placeholder}`` cannot be
checked before a job names it, and is not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Final

from perfgate.config import TaskConfig
from perfgate.errors import ConfigError
from perfgate.pool.process import child_env

CHECK_TIMEOUT_S: Final = 60.0
_MARK: Final = "\x1eperfgate-preflight "
# Runs in the child. Output of the imported modules themselves is left alone; our lines
# start with a record separator no module prints by accident.
_CHILD: Final = f"""
import importlib, json, sys
def say(**kw): print({_MARK!r} + json.dumps(kw), flush=True)
for name, target in json.loads(sys.argv[1]):
    say(task=name, checking=True)
    module, _, attr = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except BaseException as exc:
        say(task=name, error=f"{{type(exc).__name__}}: {{exc}}")
        continue
    say(task=name, error=None if callable(fn) else f"{{attr}} is not callable")
"""


def command_problem(task: TaskConfig) -> str | None:
    """Why ``task``'s program cannot be run, or ``None`` (also for a non-command task)."""
    if task.command is None:
        return None
    program = task.command[0]
    if "{" in program:
        return None
    if os.sep in program:
        if not os.path.isfile(program) or not os.access(program, os.X_OK):
            return f"program {program!r} is not an executable file"
        return None
    if shutil.which(program) is None:
        return f"program {program!r} is not on PATH"
    return None


def target_problems(
    targets: Sequence[tuple[str, str]], *, timeout_s: float = CHECK_TIMEOUT_S
) -> dict[str, str]:
    """``{task: why}`` for the ``(task, "module:function")`` targets that do not import to a
    callable, checked in one child process (see the module docstring)."""
    if not targets:
        return {}
    argv = [sys.executable, "-c", _CHILD, json.dumps(list(targets))]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, env=child_env(), check=False
        )
        stdout = done.stdout
        timed_out = False
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or b""
        stdout = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        timed_out = True
    problems: dict[str, str] = {}
    checking: str | None = None
    for line in stdout.split("\n"):  # not splitlines(): it splits at the mark too
        if not line.startswith(_MARK):
            continue
        report = json.loads(line[len(_MARK) :])
        if report.get("checking"):
            checking = report["task"]
        else:
            checking = None
            if report.get("error"):
                problems[report["task"]] = str(report["error"])
    if checking is not None:  # its import never finished
        problems[checking] = (
            f"importing it took longer than {timeout_s:g}s"
            if timed_out
            else "the process importing it died (os._exit or a crash)"
        )
    return problems


def check_tasks(tasks: Mapping[str, TaskConfig], *, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Raise a one-line :class:`~perfgate.errors.ConfigError` naming the first task (by name)
    that cannot run; return if every task can."""
    for name in sorted(tasks):
        problem = command_problem(tasks[name])
        if problem is not None:
            raise ConfigError(f"[tasks.{name}] command: {problem}")
    targets = [(n, t.target) for n, t in sorted(tasks.items()) if t.target is not None]
    problems = target_problems(targets, timeout_s=timeout_s)
    for name, target in targets:
        if name in problems:
            reason = " ".join(problems[name].split())  # one line, whatever the exception said
            raise ConfigError(f"[tasks.{name}] target {target!r}: {reason}")
