"""A job's lifecycle as one table, and the typed values that travel with it.

Pure: no trio, no I/O, nothing but data and small functions. The table is read by every
place that changes a job's state: the pool (its in-memory job), the job service (through the
journals), the SQLite journal's compare-and-set ``UPDATE`` and the Redis journal's Lua scripts,
whose allowed from-states are generated from it. See the job lifecycle section of
``docs/architecture.md``.

In the style of h2's ``ConnectionState``/``ConnectionInputs``/``_transitions``: a job is in a
:class:`JobState`; an :class:`JobInput` moves it, through :data:`TRANSITIONS`, to a new state
with an :class:`Effect` that says what the journals write besides the state. :func:`apply` is
the one function that reads the table; anything not in the table raises
:class:`InvalidTransition` (a journal turns that into its refusal: ``None``).

Every input has exactly one target state (whatever the state it leaves), which is what lets
a journal apply a transition as one compare-and-set: "if the state is one of
``rule(input).from_states``, set it to ``rule(input).to_state``" (checked at import).

A job is created ``queued``, ``scheduled`` (it waits for its ``run_at``; ``due`` queues it),
or ``succeeded`` (a result served from the cache). Of the four final states, ``failed``,
``dead`` and ``cancelled`` have one exit, ``rerun`` (a client's retry puts the job back in the
queue, its attempts carrying on); ``succeeded`` has none.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

import attrs


class JobState(enum.StrEnum):
    """A job's state; the values are the wire strings (API, journals, job channels)."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEAD = "dead"


class JobInput(enum.Enum):
    """What happens to a job."""

    START = "start"  # an attempt begins
    RETRY = "retry"  # an attempt failed; another follows after a back-off
    SUCCEED = "succeed"  # an attempt returned a result
    FAIL = "fail"  # the only attempt failed (or the job cannot run at all)
    DIE = "die"  # the last of several attempts failed (or a retried job failed permanently)
    CANCEL = "cancel"  # a client cancelled it
    REQUEUE = "requeue"  # its process stopped while it was owed work: run it again
    DUE = "due"  # a scheduled job's run_at has come: queue it
    RERUN = "rerun"  # a client retries a job that ended without success


class Effect(enum.Enum):
    """What a transition writes besides the new state."""

    BEGIN_ATTEMPT = "begin_attempt"  # one more attempt; started_at = now
    KEEP_ERROR = "keep_error"  # the failed attempt's error
    FINISH = "finish"  # outcome, finished_at (and full progress on success)
    REOPEN = "reopen"  # outcome, finished_at and progress cleared; attempts carry on


#: (state, input) → (effect, new state). Anything not here is an invalid transition.
TRANSITIONS: Final[Mapping[tuple[JobState, JobInput], tuple[Effect | None, JobState]]] = {
    # scheduled (waiting for its run_at)
    (JobState.SCHEDULED, JobInput.DUE): (None, JobState.QUEUED),
    (JobState.SCHEDULED, JobInput.CANCEL): (Effect.FINISH, JobState.CANCELLED),
    # queued
    (JobState.QUEUED, JobInput.START): (Effect.BEGIN_ATTEMPT, JobState.RUNNING),
    (JobState.QUEUED, JobInput.SUCCEED): (Effect.FINISH, JobState.SUCCEEDED),
    (JobState.QUEUED, JobInput.FAIL): (Effect.FINISH, JobState.FAILED),
    (JobState.QUEUED, JobInput.DIE): (Effect.FINISH, JobState.DEAD),
    (JobState.QUEUED, JobInput.CANCEL): (Effect.FINISH, JobState.CANCELLED),
    # running
    (JobState.RUNNING, JobInput.RETRY): (Effect.KEEP_ERROR, JobState.RETRYING),
    (JobState.RUNNING, JobInput.SUCCEED): (Effect.FINISH, JobState.SUCCEEDED),
    (JobState.RUNNING, JobInput.FAIL): (Effect.FINISH, JobState.FAILED),
    (JobState.RUNNING, JobInput.DIE): (Effect.FINISH, JobState.DEAD),
    (JobState.RUNNING, JobInput.CANCEL): (Effect.FINISH, JobState.CANCELLED),
    (JobState.RUNNING, JobInput.REQUEUE): (None, JobState.QUEUED),
    # retrying (waiting out a back-off)
    (JobState.RETRYING, JobInput.START): (Effect.BEGIN_ATTEMPT, JobState.RUNNING),
    (JobState.RETRYING, JobInput.SUCCEED): (Effect.FINISH, JobState.SUCCEEDED),
    (JobState.RETRYING, JobInput.FAIL): (Effect.FINISH, JobState.FAILED),
    (JobState.RETRYING, JobInput.DIE): (Effect.FINISH, JobState.DEAD),
    (JobState.RETRYING, JobInput.CANCEL): (Effect.FINISH, JobState.CANCELLED),
    (JobState.RETRYING, JobInput.REQUEUE): (None, JobState.QUEUED),
    # ended without success: a client may run it again
    (JobState.FAILED, JobInput.RERUN): (Effect.REOPEN, JobState.QUEUED),
    (JobState.DEAD, JobInput.RERUN): (Effect.REOPEN, JobState.QUEUED),
    (JobState.CANCELLED, JobInput.RERUN): (Effect.REOPEN, JobState.QUEUED),
}

STATES: Final = frozenset(JobState)
#: A job in one of these states is done: only a client's ``rerun`` (or the retention sweep)
#: touches it again.
FINAL_STATES: Final = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.DEAD}
)
#: Jobs in these states are owed work (recovery re-queues them after a restart, or re-arms a
#: scheduled one).
PENDING_STATES: Final = STATES - FINAL_STATES
#: The states a job that ended without success can be run again from.
RERUNNABLE_STATES: Final = frozenset(
    {s for (s, i) in TRANSITIONS if i is JobInput.RERUN}  # failed, dead, cancelled
)
#: The only state in which progress reports are recorded.
PROGRESS_STATES: Final = frozenset({JobState.RUNNING})


class InvalidTransition(ValueError):
    """``input`` is not allowed in ``state``: the job stays as it is."""

    def __init__(self, state: JobState, job_input: JobInput) -> None:
        super().__init__(f"a {state.value} job cannot {job_input.value}")
        self.state = state
        self.job_input = job_input


@attrs.frozen
class Step:
    """The outcome of :func:`apply`: the new state and what to write with it."""

    effect: Effect | None
    state: JobState


def apply(state: JobState | str, job_input: JobInput) -> Step:
    """The one reading of :data:`TRANSITIONS`. Raises :class:`InvalidTransition` for a pair
    that is not in it (and ``ValueError`` for a string that is no state)."""
    state = JobState(state)
    try:
        effect, new_state = TRANSITIONS[(state, job_input)]
    except KeyError:
        raise InvalidTransition(state, job_input) from None
    return Step(effect, new_state)


@attrs.frozen
class Rule:
    """One input as a journal applies it: a compare-and-set from ``from_states``."""

    job_input: JobInput
    from_states: frozenset[JobState]
    to_state: JobState
    effect: Effect | None


def _rules() -> dict[JobInput, Rule]:
    rules: dict[JobInput, Rule] = {}
    for job_input in JobInput:
        arrows = {k[0]: v for k, v in TRANSITIONS.items() if k[1] is job_input}
        outcomes = set(arrows.values())
        if len(outcomes) != 1:  # a journal's single compare-and-set could not express it
            raise AssertionError(f"{job_input} must have exactly one (effect, target)")
        ((effect, target),) = outcomes
        rules[job_input] = Rule(job_input, frozenset(arrows), target, effect)
    return rules


_RULES: Final = _rules()
_FINISH_INPUTS: Final = {r.to_state: i for i, r in _RULES.items() if r.effect is Effect.FINISH}


def rule(job_input: JobInput) -> Rule:
    """Where ``job_input`` may come from and where it leads, for a journal's compare-and-set."""
    return _RULES[job_input]


def finish_input(state: JobState | str) -> JobInput:
    """The input that ends a job in the final ``state``; ``ValueError`` for another state."""
    try:
        return _FINISH_INPUTS[JobState(state)]
    except (KeyError, ValueError):
        raise ValueError(f"{state!r} is not a final state") from None


def lua_set(states: frozenset[JobState]) -> str:
    """``",a,b,"``: a set of states as a Lua script tests membership in it
    (``string.find(set, ',' .. state .. ',', 1, true)``)."""
    return "," + ",".join(sorted(s.value for s in states)) + ","


def after_attempt(
    *, error: JobError | None, attempts: int, max_retries: int, cancel_requested: bool
) -> JobInput:
    """The retry decision, once an attempt has ended: succeed (no ``error``), cancel (the
    client asked), retry while attempts remain (``attempts`` counts the one that just ended,
    so a job has ``max_retries + 1`` attempts in all), or give up: ``dead`` if it had been
    retried at least once, ``failed`` if it had only the one attempt. A permanent error is
    never retried."""
    if error is None:
        return JobInput.SUCCEED
    if cancel_requested:
        return JobInput.CANCEL
    if error.permanent or attempts > max_retries:
        return JobInput.DIE if attempts > 1 else JobInput.FAIL
    return JobInput.RETRY


# -- the typed error and the pool's events ---------------------------------------------------


@attrs.frozen
class JobError:
    """Why an attempt (or a job) failed. ``kind`` says where (``exception``, ``timeout``,
    ``crash``, ``exit``, ``cancelled``, ``internal``), ``permanent`` that retrying is pointless;
    ``details`` holds the rest (``exit_code``, ``signal``, ``timeout_s``, ...).

    :meth:`to_json` is the wire shape: ``type`` and ``message`` first, ``kind`` and
    ``permanent`` when set, then the details. :meth:`from_json` reads any such object back
    (a key it does not know goes to ``details``), so ``from_json(e.to_json()) == e``.
    """

    type: str
    message: str
    kind: str | None = None
    permanent: bool | None = None
    details: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.kind is not None:
            out["kind"] = self.kind
        if self.permanent is not None:
            out["permanent"] = self.permanent
        out.update(self.details)
        return out

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> JobError:
        rest = {k: v for k, v in value.items() if k not in _ERROR_KEYS}
        kind = value.get("kind")
        permanent = value.get("permanent")
        return cls(
            type=str(value.get("type", "Error")),
            message=str(value.get("message", "")),
            kind=None if kind is None else str(kind),
            permanent=None if permanent is None else bool(permanent),
            details=rest,
        )


_ERROR_KEYS: Final = frozenset({"type", "message", "kind", "permanent"})


def cancelled_error() -> JobError:
    return JobError("Cancelled", "the job was cancelled", kind="cancelled")


@attrs.frozen
class StateEvent:
    """The job moved to ``state``; ``attempt`` counts attempts so far. A ``retrying`` event
    carries the attempt's ``error`` and the back-off ``retry_in_s``; a final one other than
    ``succeeded`` carries the ``error`` (a client-side cancel may carry none)."""

    state: JobState
    attempt: int
    error: JobError | None = None
    retry_in_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": "state", "state": self.state.value, "attempt": self.attempt}
        if self.error is not None:
            out["error"] = self.error.to_json()
        if self.retry_in_s is not None:
            out["retry_in_s"] = self.retry_in_s
        return out


_FINAL_WIRE: Final = frozenset(state.value for state in FINAL_STATES)


def is_final_state_event(data: Any) -> bool:
    """Whether a job channel's event (its decoded data) is a :class:`StateEvent` of a final
    state: the last state event a run publishes."""
    return (
        isinstance(data, dict) and data.get("event") == "state" and data.get("state") in _FINAL_WIRE
    )


@attrs.frozen
class ProgressEvent:
    """The task reported progress: ``fraction`` done (0.0 to 1.0) and a message."""

    fraction: float
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"event": "progress", "fraction": self.fraction, "message": self.message}


@attrs.frozen
class LogEvent:
    """One line of output; ``stream`` is ``stdout``/``stderr`` (commands) or ``task``."""

    line: str
    stream: str

    def to_json(self) -> dict[str, Any]:
        return {"event": "log", "line": self.line, "stream": self.stream}


@attrs.frozen
class ResultEvent:
    """The job's result, just before its ``succeeded`` state event."""

    result: Any
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": "result", "result": self.result}
        if self.cached:
            out["cached"] = True
        return out


@attrs.frozen
class ErrorEvent:
    """The final error of a job that failed or died, just before its state event."""

    error: JobError

    def to_json(self) -> dict[str, Any]:
        return {"event": "error", "error": self.error.to_json()}


#: What the pool reports, and the job channels carry (as :meth:`to_json`).
PoolEvent = StateEvent | ProgressEvent | LogEvent | ResultEvent | ErrorEvent
