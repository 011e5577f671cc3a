"""Both journals against the lifecycle table: for every (state, input) pair, a journal's
refusal is the table's refusal, and an accepted input leads where the table says."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfgate.jobs import lifecycle
from perfgate.jobs.lifecycle import TRANSITIONS, Effect, JobInput, JobState
from perfgate.redis.client import open_redis
from perfgate.redis.journal import RedisJournal
from perfgate.store import JobRecord, Journal, _sql
from perfgate.store.record import transition_write

PAIRS = [(state, job_input) for state in JobState for job_input in JobInput]
T0 = 1_700_000_000.0


def _job(job_id: str, state: JobState) -> JobRecord:
    """A job as it is in ``state`` (a finished one has its outcome written)."""
    finished = state in lifecycle.FINAL_STATES
    return JobRecord(
        id=job_id,
        task="echo",
        args={"n": 1},
        state=state,
        attempts=1,
        created_at=T0,
        started_at=T0 if state not in (JobState.QUEUED, JobState.SCHEDULED) else None,
        finished_at=T0 + 1 if finished else None,
        result=7 if state is JobState.SUCCEEDED else None,
        error={"message": "before"} if finished and state is not JobState.SUCCEEDED else None,
        progress=0.25 if finished else 0.0,
        run_at=T0 + 5 if state is JobState.SCHEDULED else None,
    )


def _check(before: JobRecord, job_input: JobInput, after: JobRecord | None, now: float) -> None:
    """``after`` is what a journal returned for ``job_input`` on ``before``."""
    expected = TRANSITIONS.get((before.state, job_input))
    if expected is None:
        assert after is None, f"{before.state} + {job_input} must be refused"
        return
    effect, target = expected
    assert after is not None, f"{before.state} + {job_input} must be applied"
    assert after.state is target
    assert after.attempts == before.attempts + (effect is Effect.BEGIN_ATTEMPT)
    if effect is Effect.BEGIN_ATTEMPT:
        assert after.started_at == now
    if effect is Effect.KEEP_ERROR:
        assert after.error == {"message": "boom"}
    if effect is Effect.FINISH:
        assert (after.finished_at, after.error) == (now, {"message": "boom"})
        assert after.result == ("r" if target is JobState.SUCCEEDED else None)
    if effect is Effect.REOPEN:
        assert (after.finished_at, after.result, after.error) == (None, None, None)
        assert after.progress == 0.0 and after.started_at == before.started_at
    if effect is None:
        assert (after.finished_at, after.result) == (before.finished_at, before.result)
    assert after.run_at == before.run_at


def _outcome(job_input: JobInput) -> dict[str, Any]:
    result = "r" if job_input is JobInput.SUCCEED else None
    return {"result": result, "error": {"message": "boom"}}


async def test_sqlite_journal_matches_the_table_for_every_pair(tmp_path: Path) -> None:
    now = T0 + 10

    async with Journal.open(
        tmp_path, max_log_lines=5, result_ttl_s=100.0, clock=lambda: now, sweep=False
    ) as journal:
        for n, (state, job_input) in enumerate(PAIRS):
            before, _ = await journal.create(_job(f"j{n}", state))
            after = await journal.apply(before.id, job_input, **_outcome(job_input))
            _check(before, job_input, after, now)
            stored = await journal.get(before.id)
            assert stored == (before if after is None else after)


async def test_redis_journal_matches_the_table_for_every_pair(redis_url: str) -> None:
    now = T0 + 10
    async with open_redis(redis_url) as client:
        journal = RedisJournal(client, max_log_lines=3, result_ttl_s=60, clock=lambda: now)
        for n, (state, job_input) in enumerate(PAIRS):
            before, _ = await journal.create(_job(f"j{n}", state))
            after = await journal.apply(before.id, job_input, **_outcome(job_input))
            _check(before, job_input, after, now)
            stored = await journal.get(before.id)
            assert stored == (before if after is None else after)
            # The listing index follows the state.
            listed, _ = await journal.list_jobs(state=(before if after is None else after).state)
            assert before.id in {job.id for job in listed}


async def test_mark_methods_are_the_table_inputs(tmp_path: Path) -> None:
    async with Journal.open(tmp_path, max_log_lines=5, result_ttl_s=100.0, sweep=False) as j:
        for n, state in enumerate(JobState):
            job, _ = await j.create(_job(f"m{n}", state))
            started = await j.mark_running(job.id)
            assert (started is None) == ((state, JobInput.START) not in TRANSITIONS)
        with pytest.raises(ValueError, match="not a final state"):
            await j.mark_finished("m0", "retrying")


# -- the SQL layer under random walks (synchronous, so hypothesis drives it directly) --------


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    connection = _sql.connect(tmp_path_factory.mktemp("walks"))
    yield connection
    connection.close()


_ids = itertools.count()


@settings(max_examples=200, deadline=None)
@given(inputs=st.lists(st.sampled_from(list(JobInput)), max_size=12))
def test_sql_walks_agree_with_the_table(conn: sqlite3.Connection, inputs: list[JobInput]) -> None:
    record, _ = _sql.insert(conn, _job(f"w{next(_ids)}", JobState.QUEUED), None, None)
    state = record.state
    for step, job_input in enumerate(inputs):
        now = T0 + step
        write = transition_write(job_input, now=now, **_outcome(job_input))
        after = _sql.transition(conn, record.id, write)
        _check(record, job_input, after, now)
        if after is not None:
            record = after
            state = after.state
        assert _sql.get(conn, record.id) == record
    assert record.state is state


async def test_recovery_requeues_exactly_the_requeue_rule(tmp_path: Path) -> None:
    async with Journal.open(tmp_path, max_log_lines=5, result_ttl_s=100.0, sweep=False) as j:
        for state in JobState:
            await j.create(_job(state.value, state))
        recovered = {job.id for job in await j.recover()}
        requeue = lifecycle.rule(JobInput.REQUEUE)
        assert recovered == {s.value for s in requeue.from_states | {requeue.to_state}}
        for state in JobState:
            stored = await j.get(state.value)
            assert stored is not None
            assert stored.state is (requeue.to_state if state in requeue.from_states else state)


@pytest.fixture
async def redis_journal(redis_url: str) -> AsyncIterator[RedisJournal]:
    async with open_redis(redis_url) as client:
        yield RedisJournal(client, max_log_lines=3, result_ttl_s=60)


async def test_redis_progress_only_where_the_table_records_it(
    redis_journal: RedisJournal,
) -> None:
    for state in JobState:
        await redis_journal.create(_job(state.value, state))
        await redis_journal.set_progress(state.value, 0.5, "half")
        stored = await redis_journal.get(state.value)
        assert stored is not None
        recorded = state in lifecycle.PROGRESS_STATES
        assert (stored.progress == 0.5) == recorded
