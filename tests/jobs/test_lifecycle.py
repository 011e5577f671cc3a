"""The job lifecycle table, the retry decision, the typed error and the pool's events."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfgate import schema
from perfgate.jobs import lifecycle
from perfgate.jobs.lifecycle import (
    FINAL_STATES,
    PENDING_STATES,
    TRANSITIONS,
    Effect,
    ErrorEvent,
    InvalidTransition,
    JobError,
    JobInput,
    JobState,
    LogEvent,
    ProgressEvent,
    ResultEvent,
    StateEvent,
    is_final_state_event,
)

PAIRS = [(state, job_input) for state in JobState for job_input in JobInput]


def test_wire_strings_are_the_api_enum() -> None:
    assert [s.value for s in JobState] == [
        "scheduled",
        "queued",
        "running",
        "retrying",
        "succeeded",
        "failed",
        "cancelled",
        "dead",
    ]
    assert {s.value for s in FINAL_STATES} == {"succeeded", "failed", "cancelled", "dead"}
    assert {JobState.SCHEDULED, JobState.QUEUED, JobState.RUNNING, JobState.RETRYING} == (
        PENDING_STATES
    )
    assert [s.value for s in JobState] == schema.JOB_STATES


@pytest.mark.parametrize(("state", "job_input"), PAIRS)
def test_apply_follows_the_table_or_refuses(state: JobState, job_input: JobInput) -> None:
    expected = TRANSITIONS.get((state, job_input))
    if expected is None:
        with pytest.raises(InvalidTransition) as refused:
            lifecycle.apply(state, job_input)
        assert (refused.value.state, refused.value.job_input) == (state, job_input)
    else:
        step = lifecycle.apply(state.value, job_input)  # a wire string is read as a state
        assert (step.effect, step.state) == expected


def test_apply_refuses_a_string_that_is_no_state() -> None:
    with pytest.raises(ValueError):
        lifecycle.apply("sleeping", JobInput.START)


def test_final_states_exit_only_by_a_clients_rerun_and_succeeded_never() -> None:
    exits = {key: value for key, value in TRANSITIONS.items() if key[0] in FINAL_STATES}
    assert set(exits) == {
        (JobState.FAILED, JobInput.RERUN),
        (JobState.DEAD, JobInput.RERUN),
        (JobState.CANCELLED, JobInput.RERUN),
    }
    assert set(exits.values()) == {(Effect.REOPEN, JobState.QUEUED)}
    assert FINAL_STATES - {JobState.SUCCEEDED} == lifecycle.RERUNNABLE_STATES


def test_a_scheduled_job_is_queued_when_due_or_cancelled_and_nothing_else() -> None:
    exits = {key[1]: value for key, value in TRANSITIONS.items() if key[0] is JobState.SCHEDULED}
    assert exits == {
        JobInput.DUE: (None, JobState.QUEUED),
        JobInput.CANCEL: (Effect.FINISH, JobState.CANCELLED),
    }
    assert lifecycle.rule(JobInput.DUE).from_states == {JobState.SCHEDULED}
    # Recovery never runs a scheduled job early: it is not requeued, and cannot start.
    assert JobState.SCHEDULED not in lifecycle.rule(JobInput.REQUEUE).from_states
    assert JobState.SCHEDULED not in lifecycle.rule(JobInput.START).from_states


def _reachable(start: JobState) -> set[JobState]:
    seen, todo = {start}, deque([start])
    while todo:
        state = todo.popleft()
        for (source, _), (_, target) in TRANSITIONS.items():
            if source is state and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_every_state_reached_from_creation_can_still_finish() -> None:
    reachable = _reachable(JobState.QUEUED) | _reachable(JobState.SCHEDULED)
    assert reachable == set(JobState)
    for state in reachable - FINAL_STATES:
        assert _reachable(state) & FINAL_STATES


def test_each_input_has_one_target_and_its_rule_lists_every_source() -> None:
    for job_input in JobInput:
        rule = lifecycle.rule(job_input)
        sources = {s for (s, i) in TRANSITIONS if i is job_input}
        assert rule.from_states == sources
        for source in sources:
            assert TRANSITIONS[(source, job_input)] == (rule.effect, rule.to_state)


def test_the_rules_the_journals_used_before_are_kept() -> None:
    assert lifecycle.rule(JobInput.START).from_states == {JobState.QUEUED, JobState.RETRYING}
    assert lifecycle.rule(JobInput.RETRY).from_states == {JobState.RUNNING}
    for job_input in (JobInput.SUCCEED, JobInput.FAIL, JobInput.DIE):
        assert lifecycle.rule(job_input).from_states == PENDING_STATES - {JobState.SCHEDULED}
        assert lifecycle.rule(job_input).effect is Effect.FINISH
    assert lifecycle.rule(JobInput.CANCEL).from_states == PENDING_STATES
    requeue = lifecycle.rule(JobInput.REQUEUE)
    assert (requeue.from_states, requeue.to_state) == (
        {JobState.RUNNING, JobState.RETRYING},
        JobState.QUEUED,
    )


def test_finish_input_names_the_input_of_each_final_state() -> None:
    for state in FINAL_STATES:
        assert lifecycle.rule(lifecycle.finish_input(state.value)).to_state is state
    for state in ("running", "queued", "nonsense"):
        with pytest.raises(ValueError, match="not a final state"):
            lifecycle.finish_input(state)


def test_lua_set_is_comma_delimited_for_exact_matches() -> None:
    assert lifecycle.lua_set(frozenset({JobState.RUNNING, JobState.DEAD})) == ",dead,running,"


@given(st.lists(st.sampled_from(list(JobInput)), max_size=40))
def test_any_walk_stays_in_the_table_and_final_is_final(inputs: list[JobInput]) -> None:
    state = JobState.QUEUED
    for job_input in inputs:
        try:
            state = lifecycle.apply(state, job_input).state
        except InvalidTransition:
            assert (state, job_input) not in TRANSITIONS
    # Wherever the walk stopped, the job can still finish (cancel ends any pending job) and a
    # final state takes no input but a client's rerun (and succeeded not even that).
    if state not in FINAL_STATES:
        assert lifecycle.apply(state, JobInput.CANCEL).state is JobState.CANCELLED
    else:
        for job_input in JobInput:
            if job_input is JobInput.RERUN and state is not JobState.SUCCEEDED:
                assert lifecycle.apply(state, job_input).state is JobState.QUEUED
                continue
            with pytest.raises(InvalidTransition):
                lifecycle.apply(state, job_input)


# -- the retry decision -----------------------------------------------------------------------

ATTEMPT_ERRORS = st.one_of(
    st.none(),
    st.builds(JobError, st.just("Boom"), st.just("boom"), permanent=st.sampled_from([None, False])),
    st.builds(JobError, st.just("Bad"), st.just("bad"), permanent=st.just(True)),
)


@given(
    max_retries=st.integers(0, 6),
    outcomes=st.lists(ATTEMPT_ERRORS, min_size=8, max_size=8),
    cancel_at=st.one_of(st.none(), st.integers(1, 8)),
)
def test_a_pool_run_ends_final_within_max_retries_plus_one_attempts(
    max_retries: int, outcomes: list[JobError | None], cancel_at: int | None
) -> None:
    """Drive the table the way the pool does: start, decide, retry... Every run ends in a
    final state, after at most ``max_retries + 1`` attempts, through valid transitions only."""
    state, attempts = JobState.QUEUED, 0
    while state not in FINAL_STATES:
        state = lifecycle.apply(state, JobInput.START).state
        error = outcomes[attempts]
        attempts += 1
        decided = lifecycle.after_attempt(
            error=error,
            attempts=attempts,
            max_retries=max_retries,
            cancel_requested=cancel_at == attempts,
        )
        state = lifecycle.apply(state, decided).state
        assert attempts <= max_retries + 1
    last = outcomes[attempts - 1]
    if last is None:
        assert state is JobState.SUCCEEDED
    elif cancel_at == attempts:
        assert state is JobState.CANCELLED
    else:
        assert state is (JobState.DEAD if attempts > 1 else JobState.FAILED)
        assert last.permanent or attempts == max_retries + 1


def test_after_attempt_cases() -> None:
    boom = JobError("Boom", "boom", kind="exception", permanent=False)
    decide = lifecycle.after_attempt
    assert decide(error=None, attempts=1, max_retries=0, cancel_requested=True) is JobInput.SUCCEED
    assert decide(error=boom, attempts=1, max_retries=3, cancel_requested=True) is JobInput.CANCEL
    assert decide(error=boom, attempts=1, max_retries=3, cancel_requested=False) is JobInput.RETRY
    assert decide(error=boom, attempts=4, max_retries=3, cancel_requested=False) is JobInput.DIE
    assert decide(error=boom, attempts=1, max_retries=0, cancel_requested=False) is JobInput.FAIL
    permanent = JobError("Bad", "bad", permanent=True)
    assert (
        decide(error=permanent, attempts=1, max_retries=3, cancel_requested=False) is JobInput.FAIL
    )
    assert (
        decide(error=permanent, attempts=2, max_retries=3, cancel_requested=False) is JobInput.DIE
    )


# -- the typed error and events: the wire shapes of before ----------------------------------


def test_job_error_wire_shapes() -> None:
    timeout = JobError("Timeout", "timed out after 2s", kind="timeout", details={"timeout_s": 2.0})
    assert timeout.to_json() == {
        "type": "Timeout",
        "message": "timed out after 2s",
        "kind": "timeout",
        "timeout_s": 2.0,
    }
    assert list(timeout.to_json()) == ["type", "message", "kind", "timeout_s"]
    assert JobError("Unrecoverable", "gone").to_json() == {
        "type": "Unrecoverable",
        "message": "gone",
    }
    from_worker = {"type": "ValueError", "message": "x", "kind": "exception", "permanent": False}
    assert JobError.from_json(from_worker).to_json() == from_worker
    assert lifecycle.cancelled_error().to_json() == {
        "type": "Cancelled",
        "message": "the job was cancelled",
        "kind": "cancelled",
    }


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))


@given(
    st.builds(
        JobError,
        st.text(max_size=10),
        st.text(max_size=20),
        kind=st.one_of(st.none(), st.text(max_size=8)),
        permanent=st.one_of(st.none(), st.booleans()),
        details=st.dictionaries(
            st.text(max_size=8).filter(lambda k: k not in {"type", "message", "kind", "permanent"}),
            JSON_SCALARS,
            max_size=4,
        ),
    )
)
def test_job_error_round_trips_through_json(error: JobError) -> None:
    assert JobError.from_json(json.loads(json.dumps(error.to_json()))) == error


def test_event_wire_shapes() -> None:
    error = JobError("Boom", "boom", kind="exception", permanent=False)
    cases: list[tuple[Any, dict[str, Any]]] = [
        (
            StateEvent(JobState.QUEUED, 0),
            {"event": "state", "state": "queued", "attempt": 0},
        ),
        (
            StateEvent(JobState.RETRYING, 1, error, retry_in_s=0.5),
            {
                "event": "state",
                "state": "retrying",
                "attempt": 1,
                "error": error.to_json(),
                "retry_in_s": 0.5,
            },
        ),
        (
            StateEvent(JobState.DEAD, 3, error),
            {"event": "state", "state": "dead", "attempt": 3, "error": error.to_json()},
        ),
        (
            ProgressEvent(0.25, "a quarter"),
            {"event": "progress", "fraction": 0.25, "message": "a quarter"},
        ),
        (LogEvent("hello", "stdout"), {"event": "log", "line": "hello", "stream": "stdout"}),
        (ResultEvent({"a": 1}), {"event": "result", "result": {"a": 1}}),
        (ResultEvent(None, cached=True), {"event": "result", "result": None, "cached": True}),
        (ErrorEvent(error), {"event": "error", "error": error.to_json()}),
    ]
    for event, expected in cases:
        wire = event.to_json()
        assert wire == expected
        assert list(wire) == list(expected)
        assert type(wire["event"]) is str
        if "state" in wire:
            assert type(wire["state"]) is str


def test_a_final_state_event_is_told_by_its_wire_form() -> None:
    for state in JobState:
        data = StateEvent(state, 1).to_json()
        assert is_final_state_event(data) == (state in FINAL_STATES)
    for other in ({"event": "progress", "state": "failed"}, {"state": "failed"}, "failed", None):
        assert not is_final_state_event(other)
