"""Checking a job against configuration before it is queued. Pure: no I/O, no trio.

:func:`check_args` is the submit-time gate for a job's arguments: the task's declared
arguments (``[tasks.NAME.args.ARG]``), then, for a command task, what its argv can carry
(see :mod:`perfgate.pool.template`). It names every bad argument in one 422, so a bad
argument never reaches a worker.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from perfgate.config import TaskConfig
from perfgate.errors import ValidationError
from perfgate.pool.job import JobSpec
from perfgate.pool.template import argv_problems, raise_problems
from perfgate.priorities import PRIORITIES


def check_args(task: TaskConfig, args: Any) -> dict[str, Any]:
    """Validate ``args`` for ``task``; return them as the task will receive them.

    Declared defaults fill in omitted arguments, and an integer argument given as ``3.0`` is
    ``3``. Raises :class:`ValidationError` (422) with ``errors`` naming each bad argument as
    ``args.NAME``: unknown (when the task declares its arguments), missing when required,
    of the wrong type or out of bounds, or, for a command, not fit for an argv element (a
    value starting with ``-`` unless the task allows options, a NUL byte, a non-scalar).
    """
    if not isinstance(args, Mapping):
        raise ValidationError("args must be an object", field="args")
    problems: list[dict[str, str]] = []
    out: dict[str, Any] = {}
    declared = task.args
    for name, value in args.items():
        field = f"args.{name}"
        if not isinstance(name, str) or not name.isidentifier():
            problems.append({"field": field, "message": "not an identifier"})
            continue
        spec = declared.get(name)
        if spec is None:
            if declared:
                known = ", ".join(sorted(declared))
                problems.append({"field": field, "message": f"unknown argument (known: {known})"})
                continue
            out[name] = value
            continue
        problem = spec.problem(value)
        if problem is not None:
            problems.append({"field": field, "message": problem})
        else:
            out[name] = spec.normalise(value)
    for name, spec in declared.items():
        if name in args:
            continue
        if spec.default is not None:
            out[name] = spec.default
        elif spec.required:
            problems.append({"field": f"args.{name}", "message": "required"})
    if task.command is not None:
        known_bad = {p["field"] for p in problems}
        try:
            _, argv = argv_problems(task.command, out, task.options_allowed)
        except ValueError as exc:
            raise ValidationError(f"bad command template: {exc}") from None
        problems.extend(p for p in argv if p["field"] not in known_bad)
    raise_problems(problems)
    return out


def check_spec(spec: JobSpec, tasks: Mapping[str, TaskConfig]) -> tuple[TaskConfig, int]:
    """Validate ``spec``; return its task and the size of its args as JSON.

    Raises :class:`ValidationError` (422) with ``field`` naming the offending field.
    """
    task = tasks.get(spec.task)
    if task is None:
        raise ValidationError(f"unknown task {spec.task!r}", field="task")
    if spec.priority is not None and spec.priority not in PRIORITIES:
        raise ValidationError(
            f"priority must be one of {', '.join(PRIORITIES)}, got {spec.priority!r}",
            field="priority",
        )
    if spec.timeout_s is not None and not (0 < spec.timeout_s < math.inf):
        raise ValidationError("timeout_s must be a positive number", field="timeout_s")
    if spec.max_retries is not None and spec.max_retries < 0:
        raise ValidationError("max_retries must be >= 0", field="max_retries")
    check_args(task, spec.args)
    if task.command is not None:
        return task, 0
    try:
        size = len(json.dumps(spec.args, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"args are not JSON: {exc}", field="args") from None
    return task, size
