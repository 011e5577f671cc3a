"""Checking a job against configuration before it is queued. Pure: no I/O, no trio."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from perfgate.config import TaskConfig
from perfgate.errors import ValidationError
from perfgate.pool.job import JobSpec
from perfgate.pool.queue import PRIORITIES
from perfgate.pool.template import render_argv


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
    if not isinstance(spec.args, Mapping):
        raise ValidationError("args must be an object", field="args")
    if task.command is not None:
        render_argv(task.command, spec.args)
        return task, 0
    for name in spec.args:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValidationError(f"argument name {name!r} is not an identifier")
    try:
        size = len(json.dumps(spec.args, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"args are not JSON: {exc}", field="args") from None
    return task, size
