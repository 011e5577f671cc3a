"""A submit body validated into the job to journal and the spec to queue
(perfgate/jobs/submission.py), pure: no pool, no journal, the time an argument."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from perfgate.config import Config, TaskConfig
from perfgate.errors import ValidationError
from perfgate.jobs.submission import prepare
from perfgate.pool import JobSpec
from perfgate.store import QUEUED, SCHEDULED
from tests.conftest import make_config

NOW = 1_800_000_000.0


@pytest.fixture
def config(tmp_path: Path) -> Config:
    slow = TaskConfig(
        name="slow",
        target="perfgate.tasks:sleep",
        timeout_s=7.0,
        max_retries=2,
        priority="low",
        cacheable=True,
    )
    return make_config(tmp_path, tasks={"slow": slow})


def _prepare(config: Config, body: Any, **kwargs: Any) -> Any:
    checked: list[JobSpec] = []
    job = prepare(body, config=config, validate=checked.append, tenant="acme", now=NOW, **kwargs)
    assert checked == [job.spec]  # the pool's check saw exactly what is queued
    return job


def test_the_task_gives_the_defaults_and_the_body_overrides_them(config: Config) -> None:
    job = _prepare(config, {"task": "slow", "args": {"seconds": 1}}, job_id="j1")
    assert (job.spec.id, job.spec.priority, job.spec.timeout_s, job.spec.max_retries) == (
        "j1",
        "low",
        7.0,
        2,
    )
    record = job.record
    assert (record.id, record.tenant, record.state, record.created_at) == (
        "j1",
        "acme",
        QUEUED,
        NOW,
    )
    assert job.cacheable and job.key is None
    body = {"task": "slow", "priority": "high", "timeout_s": 1.5, "max_retries": 0}
    spec = _prepare(config, body).spec
    assert (spec.priority, spec.timeout_s, spec.max_retries) == ("high", 1.5, 0)


def test_a_delay_makes_a_scheduled_job_due_later(config: Config) -> None:
    job = _prepare(config, {"task": "echo", "delay_s": 30})
    assert (job.record.state, job.record.run_at) == (SCHEDULED, NOW + 30)


def test_an_unknown_task_is_a_422_naming_the_field(config: Config) -> None:
    with pytest.raises(ValidationError) as info:
        _prepare(config, {"task": "nope"})
    assert info.value.extra["errors"] == [{"field": "task", "message": "unknown task"}]
    assert "slow" in info.value.message  # the configured tasks are listed


def test_the_fingerprint_ignores_the_key_and_later_fields_left_unset(config: Config) -> None:
    # A delay is part of the request: the same key with and without one is another body (409).
    plain = _prepare(config, {"task": "echo", "args": {"a": 1}})
    keyed = _prepare(config, {"task": "echo", "args": {"a": 1}, "idempotency_key": "k"})
    unset = _prepare(config, {"task": "echo", "args": {"a": 1}, "delay_s": None})
    delayed = _prepare(config, {"task": "echo", "args": {"a": 1}, "delay_s": 5})
    other = _prepare(config, {"task": "echo", "args": {"a": 2}})
    assert plain.fingerprint == keyed.fingerprint == unset.fingerprint
    assert keyed.key == "k" and keyed.record.idempotency_key == "k"
    assert delayed.fingerprint != plain.fingerprint != other.fingerprint


def test_the_pools_refusal_stops_the_submit(config: Config) -> None:
    def refuse(spec: JobSpec) -> None:
        raise ValidationError("no", errors=[{"field": "args", "message": "no"}])

    with pytest.raises(ValidationError):
        prepare({"task": "echo"}, config=config, validate=refuse, tenant="t", now=NOW)
