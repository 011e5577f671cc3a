"""The job record: ids, timestamps, its JSON face, and the fields a final transition writes."""

from __future__ import annotations

import pytest

from perfgate.jobs.lifecycle import JobInput
from perfgate.store.record import (
    CANCELLED,
    DEAD,
    FAILED,
    FINISHED_STATES,
    PENDING_STATES,
    QUEUED,
    RETRYING,
    RUNNING,
    SCHEDULED,
    STARTABLE_STATES,
    SUCCEEDED,
    JobRecord,
    JobState,
    finish_fields,
    iso_utc,
    new_job_id,
    transition_write,
)


def test_iso_utc() -> None:
    assert iso_utc(1_700_000_000.5) == "2023-11-14T22:13:20.500Z"
    assert iso_utc(None) is None


def test_job_ids_sort_by_creation_time_and_are_unique() -> None:
    ids = [new_job_id(1_700_000_000.0 + i) for i in range(100)]
    assert ids == sorted(ids)
    assert len({new_job_id(1.0) for _ in range(1000)}) == 1000


def test_to_json_uses_the_design_field_names() -> None:
    job = JobRecord(id="j1", task="echo", args={"a": 1}, created_at=1_700_000_000.0)
    data = job.to_json()
    for name in (
        "id",
        "task",
        "args",
        "state",
        "priority",
        "attempts",
        "progress",
        "result",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "cached",
    ):
        assert name in data
    assert data["created_at"] == "2023-11-14T22:13:20.000Z"
    assert data["state"] == "queued"
    assert "fingerprint" not in data


def test_finish_fields_is_the_one_rule_for_final_transitions() -> None:
    done = finish_fields("succeeded", result={"x": 1}, error=None, cached=True, now=5.0)
    assert done == {
        "state": "succeeded",
        "result": {"x": 1},
        "error": None,
        "cached": True,
        "finished_at": 5.0,
        "progress": 1.0,
    }
    failed = finish_fields("failed", result=None, error={"type": "E"}, cached=False, now=6.0)
    assert "progress" not in failed
    with pytest.raises(ValueError, match="not a final state"):
        finish_fields("running", result=None, error=None, cached=False, now=7.0)


def test_a_start_begins_an_attempt_from_the_startable_states() -> None:
    write = transition_write(JobInput.START, now=3.0)
    assert write.fields == {"state": RUNNING, "started_at": 3.0}
    assert write.increment_attempts
    assert write.from_states == STARTABLE_STATES
    assert QUEUED in write.from_states
    assert RUNNING not in write.from_states


def test_a_retry_keeps_the_error_and_counts_no_attempt() -> None:
    write = transition_write(JobInput.RETRY, now=3.0, error={"type": "E"})
    assert write.fields == {"state": RETRYING, "error": {"type": "E"}}
    assert not write.increment_attempts
    assert write.from_states == {RUNNING}


@pytest.mark.parametrize(
    ("job_input", "final"),
    [
        (JobInput.SUCCEED, SUCCEEDED),
        (JobInput.FAIL, FAILED),
        (JobInput.DIE, DEAD),
        (JobInput.CANCEL, CANCELLED),
    ],
)
def test_final_inputs_write_the_finish_fields(job_input: JobInput, final: JobState) -> None:
    write = transition_write(job_input, now=9.0, result="r", error="e", cached=True)
    assert write.fields == finish_fields(final, result="r", error="e", cached=True, now=9.0)
    assert not write.increment_attempts
    assert not write.from_states & FINISHED_STATES


def test_a_rerun_reopens_a_finished_job_and_clears_its_outcome() -> None:
    write = transition_write(JobInput.RERUN, now=4.0)
    assert write.fields["state"] in PENDING_STATES
    assert write.fields["result"] is None
    assert write.fields["error"] is None
    assert write.fields["finished_at"] is None
    assert write.fields["progress"] == 0.0
    assert write.from_states <= FINISHED_STATES
    assert SUCCEEDED not in write.from_states  # only a job that ended without success


def test_a_due_job_is_queued_and_nothing_else_written() -> None:
    write = transition_write(JobInput.DUE, now=1.0)
    assert write.fields == {"state": QUEUED}
    assert write.from_states == {SCHEDULED}


def test_the_state_converter_refuses_an_unknown_state() -> None:
    assert JobRecord(id="j", task="t", args={}, state="running").state is RUNNING
    with pytest.raises(ValueError, match="'bogus'"):
        JobRecord(id="j", task="t", args={}, state="bogus")


def test_finished_follows_the_final_states() -> None:
    for state in JobState:
        job = JobRecord(id="j", task="t", args={}, state=state)
        assert job.finished is (state in FINISHED_STATES)
