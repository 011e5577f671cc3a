"""The journal's SQL (perfgate.store._sql), synchronous, on a real SQLite file: what each
statement reads and writes, without the async shell around it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from perfgate.errors import Conflict, NotFound
from perfgate.jobs.lifecycle import JobInput
from perfgate.store import _sql
from perfgate.store.record import JobRecord, JobState, transition_write
from perfgate.store.retention import MAX_LOG_LINE_CHARS


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = _sql.connect(tmp_path)
    yield connection
    connection.close()


def job(job_id: str, created_at: float = 1.0, **fields: object) -> JobRecord:
    return JobRecord(id=job_id, task="echo", args={"n": 1}, created_at=created_at, **fields)  # type: ignore[arg-type]


def test_a_record_round_trips_every_field(conn: sqlite3.Connection) -> None:
    record = JobRecord(
        id="j1",
        task="echo",
        args={"text": "é", "list": [1, None]},
        state=JobState.RETRYING,
        priority="high",
        attempts=2,
        progress=0.5,
        progress_message="half",
        result={"ok": [True]},
        error={"type": "E", "message": "m"},
        created_at=10.5,
        started_at=11.0,
        finished_at=None,
        timeout_s=3.0,
        max_retries=4,
        cached=True,
        tenant="acme",
        run_at=12.0,
    )
    stored, created = _sql.insert(conn, record, "key", "fp")
    assert created
    assert (
        _sql.get(conn, "j1")
        == stored
        == attrs.evolve(record, idempotency_key="key", fingerprint="fp")
    )
    assert _sql.get(conn, "nope") is None


def test_an_idempotency_key_returns_the_first_job_or_conflicts(conn: sqlite3.Connection) -> None:
    first, _ = _sql.insert(conn, job("a"), "k", "fp1")
    again, created = _sql.insert(conn, job("b"), "k", "fp1")
    assert (again, created) == (first, False)
    with pytest.raises(Conflict) as info:
        _sql.insert(conn, job("c"), "k", "fp2")
    assert info.value.extra == {"job_id": "a"}
    other_tenant, created = _sql.insert(conn, job("d", tenant="acme"), "k", "fp2")
    assert created and other_tenant.id == "d"
    with pytest.raises(Conflict, match="'a' already exists"):
        _sql.insert(conn, job("a"), None, None)


def test_insert_many_answers_a_conflict_in_its_place_and_keeps_the_rest(
    conn: sqlite3.Connection,
) -> None:
    _sql.insert(conn, job("taken"), None, None)
    conn.execute("BEGIN")
    out = _sql.insert_many(
        conn, [(job("x"), None, None), (job("taken"), None, None), (job("y"), None, None)]
    )
    conn.execute("COMMIT")
    assert isinstance(out[1], Conflict)
    assert [o[1] for o in (out[0], out[2])] == [True, True]  # type: ignore[index]
    assert _sql.count(conn) == {"queued": 3}


def test_transition_is_compare_and_set(conn: sqlite3.Connection) -> None:
    _sql.insert(conn, job("j"), None, None)
    started = _sql.transition(conn, "j", transition_write(JobInput.START, now=5.0))
    assert started is not None
    assert (started.state, started.attempts, started.started_at) == (JobState.RUNNING, 1, 5.0)
    # A second start finds the job running: refused, nothing written.
    assert _sql.transition(conn, "j", transition_write(JobInput.START, now=6.0)) is None
    assert _sql.get(conn, "j") == started
    done = _sql.transition(
        conn, "j", transition_write(JobInput.SUCCEED, now=7.0, result={"r": [1]})
    )
    assert done is not None
    assert (done.state, done.result, done.finished_at, done.progress) == (
        JobState.SUCCEEDED,
        {"r": [1]},
        7.0,
        1.0,
    )
    with pytest.raises(NotFound):
        _sql.transition(conn, "ghost", transition_write(JobInput.START, now=1.0))


@pytest.mark.parametrize("field", ["id", "created_at", "tenant", "no_such_column"])
def test_transition_refuses_fields_it_must_never_write(
    conn: sqlite3.Connection, field: str
) -> None:
    _sql.insert(conn, job("j"), None, None)
    write = attrs.evolve(transition_write(JobInput.START, now=1.0), fields={field: "x"})
    with pytest.raises(ValueError, match=repr(field)):
        _sql.transition(conn, "j", write)


def test_progress_is_written_only_while_the_job_can_make_progress(conn: sqlite3.Connection) -> None:
    _sql.insert(conn, job("run", state=JobState.RUNNING), None, None)
    _sql.insert(conn, job("done", state=JobState.SUCCEEDED, progress=1.0), None, None)
    _sql.set_progress(
        conn, {"run": (0.25, "a quarter"), "done": (0.1, "late"), "ghost": (0.5, None)}
    )
    running = _sql.get(conn, "run")
    finished = _sql.get(conn, "done")
    assert running is not None and finished is not None
    assert (running.progress, running.progress_message) == (0.25, "a quarter")
    assert (finished.progress, finished.progress_message) == (1.0, None)


def test_logs_are_numbered_per_job_across_calls_and_capped(conn: sqlite3.Connection) -> None:
    _sql.insert(conn, job("j"), None, None)
    _sql.append_logs(conn, [("j", "stdout", f"l{i}", 1.0) for i in range(3)], max_log_lines=4)
    _sql.append_logs(
        conn, [("j", "stderr", f"m{i}", 2.0) for i in range(3)] + [("ghost", "stdout", "x", 2.0)], 4
    )
    lines = _sql.logs(conn, "j", after=0, limit=100)
    assert [(line["seq"], line["line"]) for line in lines] == [
        (3, "l2"),
        (4, "m0"),
        (5, "m1"),
        (6, "m2"),
    ]
    assert lines[-1]["stream"] == "stderr"
    assert lines[-1]["ts"] == "1970-01-01T00:00:02.000Z"
    assert [line["seq"] for line in _sql.logs(conn, "j", after=4, limit=1)] == [5]
    assert _sql.logs(conn, "ghost", after=0, limit=10) == []


def test_one_batch_over_the_cap_keeps_its_last_lines_and_clips_long_ones(
    conn: sqlite3.Connection,
) -> None:
    _sql.insert(conn, job("j"), None, None)
    long = "y" * (MAX_LOG_LINE_CHARS + 50)
    _sql.append_logs(
        conn, [("j", "stdout", f"l{i}", 1.0) for i in range(10)] + [("j", "stdout", long, 1.0)], 3
    )
    lines = _sql.logs(conn, "j", after=0, limit=100)
    assert [line["seq"] for line in lines] == [9, 10, 11]
    assert len(lines[-1]["line"]) == MAX_LOG_LINE_CHARS


def test_requeue_puts_owed_work_back_and_lists_the_queue_oldest_first(
    conn: sqlite3.Connection,
) -> None:
    for job_id, created_at, state in [
        ("late", 3.0, JobState.QUEUED),
        ("running", 2.0, JobState.RUNNING),
        ("retrying", 1.0, JobState.RETRYING),
        ("done", 0.5, JobState.SUCCEEDED),
        ("later", 0.1, JobState.SCHEDULED),
    ]:
        _sql.insert(conn, job(job_id, created_at, state=state, run_at=9.0), None, None)
    assert [r.id for r in _sql.requeue_pending(conn)] == ["retrying", "running", "late"]
    assert [r.id for r in _sql.scheduled_jobs(conn)] == ["later"]
    assert _sql.count(conn) == {"queued": 3, "succeeded": 1, "scheduled": 1}


def test_the_sweep_deletes_only_finished_jobs_past_the_cutoff_a_chunk_at_a_time(
    conn: sqlite3.Connection,
) -> None:
    for i in range(5):
        _sql.insert(conn, job(f"old{i}", state=JobState.FAILED, finished_at=1.0), None, None)
    _sql.insert(conn, job("new", state=JobState.SUCCEEDED, finished_at=10.0), None, None)
    _sql.insert(conn, job("live", state=JobState.RUNNING), None, None)
    _sql.append_logs(conn, [("old0", "stdout", "x", 1.0)], 10)
    assert _sql.sweep_chunk(conn, finished_before=5.0, chunk=3) == 3
    assert _sql.sweep_chunk(conn, finished_before=5.0, chunk=3) == 2
    assert _sql.sweep_chunk(conn, finished_before=5.0, chunk=3) == 0
    assert _sql.count(conn) == {"succeeded": 1, "running": 1}
    assert conn.execute("SELECT COUNT(*) FROM job_logs").fetchone()[0] == 0


def test_pages_are_newest_first_ties_broken_by_id_and_say_whether_more_follow(
    conn: sqlite3.Connection,
) -> None:
    for job_id, created_at in [("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 3.0)]:
        _sql.insert(conn, job(job_id, created_at), None, None)
    _sql.insert(conn, job("z", 5.0, tenant="acme"), None, None)
    page, more = _sql.list_page(conn, state=None, limit=2, before=None, tenant="default")
    assert ([r.id for r in page], more) == (["d", "c"], True)
    page, more = _sql.list_page(conn, state=None, limit=2, before=(2.0, "c"), tenant="default")
    assert ([r.id for r in page], more) == (["b", "a"], False)
    everyone, _ = _sql.list_page(conn, state="queued", limit=10, before=None)
    assert [r.id for r in everyone] == ["z", "d", "c", "b", "a"]
    assert _sql.list_page(conn, state="running", limit=10, before=None) == ([], False)


def test_a_readonly_connection_reads_but_cannot_write(
    tmp_path: Path, conn: sqlite3.Connection
) -> None:
    _sql.insert(conn, job("j"), None, None)
    reader = _sql.connect(tmp_path, readonly=True)
    try:
        assert _sql.get(reader, "j") is not None
        with pytest.raises(sqlite3.OperationalError):
            _sql.insert(reader, job("k"), None, None)
    finally:
        reader.close()


def test_the_journal_is_in_wal_mode_with_full_sync(conn: sqlite3.Connection) -> None:
    assert _sql.journal_mode(conn) == "wal"
    assert _sql.synchronous(conn) == "FULL"
