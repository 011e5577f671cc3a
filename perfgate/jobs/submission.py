"""A submit body, validated into the job to journal and the spec to queue.

Pure: the configuration, the pool's check and the time come in as arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from perfgate.config import Config, TaskConfig
from perfgate.errors import ValidationError
from perfgate.jobs.delayed import due_time
from perfgate.pool import JobSpec, check_args
from perfgate.schema import SUBMIT_JOB
from perfgate.store import QUEUED, SCHEDULED, JobRecord, body_fingerprint, new_job_id


@attrs.frozen
class Prepared:
    """A validated submit: what to journal, what to queue."""

    record: JobRecord
    spec: JobSpec
    key: str | None
    fingerprint: str
    cacheable: bool


def prepare(
    body: Any,
    *,
    config: Config,
    validate: Callable[[JobSpec], object],
    tenant: str,
    now: float,
    job_id: str | None = None,
) -> Prepared:
    """Validate a submit body (:class:`~perfgate.errors.ValidationError`, 422, naming the
    field) into the job to journal and the spec to queue; ``validate`` is the pool's check."""
    request = SUBMIT_JOB.parse(body)
    due = due_time(request, now)  # 422 naming delay_s / run_at
    task = task_config(config, request["task"])
    args = check_args(task, request["args"] or {})  # 422 naming each bad argument
    spec = JobSpec(
        id=job_id or new_job_id(),
        task=task.name,
        args=args,
        priority=request["priority"] or task.priority,
        timeout_s=request["timeout_s"] or task.timeout_s,
        max_retries=(
            request["max_retries"] if request["max_retries"] is not None else task.max_retries
        ),
    )
    validate(spec)
    key = request["idempotency_key"]
    # The key names the request and is not part of it; only the job's own fields count.
    fingerprint = body_fingerprint(request)
    record = JobRecord(
        id=spec.id,
        task=spec.task,
        args=args,
        priority=spec.priority or task.priority,
        timeout_s=spec.timeout_s,
        max_retries=spec.max_retries or 0,
        idempotency_key=key,
        fingerprint=fingerprint,
        tenant=tenant,
        created_at=now,
        state=QUEUED if due is None else SCHEDULED,
        run_at=due,
    )
    return Prepared(record, spec, key, fingerprint, task.cacheable)


def task_config(config: Config, name: str) -> TaskConfig:
    """The configured task ``name``; 422 naming ``task`` if there is none."""
    task = config.tasks.get(name)
    if task is None:
        raise ValidationError(
            f"unknown task {name!r}; configured: {', '.join(sorted(config.tasks))}",
            errors=[{"field": "task", "message": "unknown task"}],
        )
    return task
