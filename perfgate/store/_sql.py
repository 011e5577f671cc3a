"""The journal's SQLite schema and its blocking operations.

No trio here: every function takes a :class:`sqlite3.Connection` and runs to completion on
the calling thread. :mod:`perfgate.store._journal` runs them in worker threads and decides
the transaction boundaries (group commit); these functions never ``COMMIT`` themselves.

Connections are opened in autocommit mode (``isolation_level=None``) so that transactions
are explicit: ``BEGIN IMMEDIATE`` … ``COMMIT``, with a ``SAVEPOINT`` per operation so that
one failing operation does not undo its neighbours in the same batch.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from perfgate.config import DEFAULT_TENANT
from perfgate.errors import Conflict, NotFound, PerfgateError, ValidationError
from perfgate.jobs.lifecycle import PROGRESS_STATES, JobInput, rule
from perfgate.store import retention
from perfgate.store.record import (
    FINISHED_STATES,
    QUEUED,
    SCHEDULED,
    JobRecord,
    TransitionWrite,
    iso_utc,
)

SCHEMA_VERSION = 3
FILENAME = "journal.sqlite3"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    id               TEXT PRIMARY KEY,
    task             TEXT NOT NULL,
    args             TEXT NOT NULL,
    state            TEXT NOT NULL,
    priority         TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    progress         REAL NOT NULL,
    progress_message TEXT,
    result           TEXT NOT NULL,
    error            TEXT NOT NULL,
    created_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    idempotency_key  TEXT,
    fingerprint      TEXT,
    timeout_s        REAL,
    max_retries      INTEGER NOT NULL,
    cached           INTEGER NOT NULL,
    log_seq          INTEGER NOT NULL DEFAULT 0,
    tenant           TEXT NOT NULL DEFAULT '{DEFAULT_TENANT}',
    run_at           REAL
);
CREATE TABLE IF NOT EXISTS job_logs (
    job_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    ts     REAL NOT NULL,
    stream TEXT NOT NULL,
    line   TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
"""
# Created after the migration, since they name columns that a version-1 journal lacks.
_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS jobs_by_tenant_idempotency_key
    ON jobs (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_state_created ON jobs (state, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_tenant_created ON jobs (tenant, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_tenant_state_created ON jobs (tenant, state, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
"""

_COLUMNS = (
    "id",
    "task",
    "args",
    "state",
    "priority",
    "attempts",
    "progress",
    "progress_message",
    "result",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "idempotency_key",
    "fingerprint",
    "timeout_s",
    "max_retries",
    "cached",
    "tenant",
    "run_at",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
_JSON_COLUMNS = frozenset({"args", "result", "error"})


def connect(data_dir: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) the journal under ``data_dir``, in WAL mode.

    ``synchronous=FULL``: in WAL mode every commit fsyncs the log, so a committed job survives
    a power cut as well as a ``kill -9``. Group commit in the writer keeps that affordable.
    """
    path = data_dir / FILENAME
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 30000")
    if not readonly:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            conn.close()
            raise sqlite3.OperationalError(f"SQLite refused WAL mode for {path} (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.executescript(_SCHEMA)
        _migrate(conn)
        conn.executescript(_INDEXES)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    else:
        conn.execute("PRAGMA query_only = ON")
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring an older journal up to date, in one transaction. Version 1 (no tenants): its jobs
    go to :data:`~perfgate.config.DEFAULT_TENANT` (so with no tokens nothing changes), and its
    idempotency keys become unique per tenant. Version 2 (no delayed jobs): ``run_at`` is
    added, empty (none of its jobs was delayed)."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(jobs)")}
    if {"tenant", "run_at"} <= columns:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if "tenant" not in columns:
            conn.execute(
                f"ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT '{DEFAULT_TENANT}'"
            )
            conn.execute("DROP INDEX IF EXISTS jobs_by_idempotency_key")
        if "run_at" not in columns:
            conn.execute("ALTER TABLE jobs ADD COLUMN run_at REAL")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def journal_mode(conn: sqlite3.Connection) -> str:
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def synchronous(conn: sqlite3.Connection) -> str:
    level = int(conn.execute("PRAGMA synchronous").fetchone()[0])
    return _SYNCHRONOUS.get(level, str(level))


# -- rows -------------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    """JSON text for a column; NaN, infinities and non-JSON values are refused (an API
    client could not read them back)."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"not representable as JSON: {exc}") from None


def _to_row(record: JobRecord) -> tuple[Any, ...]:
    values = []
    for name in _COLUMNS:
        value = getattr(record, name)
        if name in _JSON_COLUMNS:
            value = _dumps(value)
        elif name == "cached":
            value = int(value)
        values.append(value)
    return tuple(values)


def _from_row(row: sqlite3.Row) -> JobRecord:
    fields = {name: row[name] for name in _COLUMNS}
    for name in _JSON_COLUMNS:
        fields[name] = json.loads(fields[name])
    fields["cached"] = bool(fields["cached"])
    return JobRecord(**fields)


# -- writes (call inside a transaction) -------------------------------------------------------


def insert(
    conn: sqlite3.Connection,
    record: JobRecord,
    idempotency_key: str | None,
    fingerprint: str | None,
) -> tuple[JobRecord, bool]:
    """Insert ``record``, unless ``idempotency_key`` already names a job of the record's
    tenant: then return that job when its fingerprint matches, and raise :class:`Conflict`
    when it does not. Another tenant's use of the same key is no concern of this one."""
    if idempotency_key is not None:
        row = conn.execute(
            f"{_SELECT} WHERE tenant = ? AND idempotency_key = ?",
            (record.tenant, idempotency_key),
        ).fetchone()
        if row is not None:
            existing = _from_row(row)
            if existing.fingerprint != fingerprint:
                raise Conflict(
                    "idempotency key already used with a different request body",
                    job_id=existing.id,
                )
            return existing, False
    record = attrs.evolve(record, idempotency_key=idempotency_key, fingerprint=fingerprint)
    placeholders = ", ".join("?" for _ in _COLUMNS)
    try:
        conn.execute(
            f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({placeholders})", _to_row(record)
        )
    except sqlite3.IntegrityError:
        raise Conflict(f"job id {record.id!r} already exists") from None
    return record, True


def insert_many(
    conn: sqlite3.Connection, jobs: list[tuple[JobRecord, str | None, str | None]]
) -> list[tuple[JobRecord, bool] | PerfgateError]:
    """:func:`insert` each job under its own savepoint: a job that conflicts is answered
    with its error and leaves the others (and the enclosing transaction) intact."""
    out: list[tuple[JobRecord, bool] | PerfgateError] = []
    for record, key, fingerprint in jobs:
        conn.execute("SAVEPOINT item")
        try:
            out.append(insert(conn, record, key, fingerprint))
        except PerfgateError as exc:
            conn.execute("ROLLBACK TO item")
            out.append(exc)
        conn.execute("RELEASE item")
    return out


def transition(conn: sqlite3.Connection, job_id: str, write: TransitionWrite) -> JobRecord | None:
    """Compare-and-set: apply ``write.fields`` only if the job is in one of
    ``write.from_states`` (see :func:`perfgate.store.record.transition_write`, which reads
    them from the lifecycle table).

    Returns the updated job, ``None`` if the job exists but is in another state (the table
    refuses the transition), and raises :class:`NotFound` if there is no such job. One
    ``UPDATE … RETURNING`` statement, so the check and the change are atomic.
    """
    sets = []
    params: list[Any] = []
    for name, value in write.fields.items():
        if name not in _COLUMNS or name in ("id", "created_at", "tenant"):
            raise ValueError(f"cannot set job field {name!r}")
        sets.append(f"{name} = ?")
        params.append(_dumps(value) if name in _JSON_COLUMNS else value)
    if write.increment_attempts:
        sets.append("attempts = attempts + 1")
    states = sorted(write.from_states)
    sql = (
        f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? "
        f"AND state IN ({', '.join('?' for _ in states)}) RETURNING {', '.join(_COLUMNS)}"
    )
    row = conn.execute(sql, (*params, job_id, *states)).fetchone()
    if row is not None:
        return _from_row(row)
    if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
        raise NotFound(f"no job {job_id!r}")
    return None


def set_progress(conn: sqlite3.Connection, updates: Mapping[str, tuple[float, str | None]]) -> None:
    """Record the latest progress of each job; finished jobs keep their final progress."""
    states = sorted(PROGRESS_STATES)
    marks = ", ".join("?" for _ in states)
    conn.executemany(
        f"UPDATE jobs SET progress = ?, progress_message = ? WHERE id = ? AND state IN ({marks})",
        [(fraction, message, job_id, *states) for job_id, (fraction, message) in updates.items()],
    )


def append_logs(
    conn: sqlite3.Connection,
    lines: Sequence[tuple[str, str, str, float]],
    max_log_lines: int,
) -> None:
    """Append ``(job_id, stream, line, ts)`` lines, numbering them per job and keeping only
    the last ``max_log_lines`` of each job. Lines for an unknown job are dropped."""
    by_job: dict[str, list[tuple[str, str, float]]] = {}
    for job_id, stream, line, ts in lines:
        by_job.setdefault(job_id, []).append((stream, line, ts))
    for job_id, items in by_job.items():
        row = conn.execute("SELECT log_seq FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            continue
        first = row[0] + 1
        # Lines that the cap would delete at once are not written at all.
        skip = max(0, len(items) - max_log_lines)
        conn.executemany(
            "INSERT INTO job_logs (job_id, seq, ts, stream, line) VALUES (?, ?, ?, ?, ?)",
            [
                (job_id, first + i, ts, stream, retention.clip_line(line))
                for i, (stream, line, ts) in enumerate(items)
                if i >= skip
            ],
        )
        last = first + len(items) - 1
        conn.execute("UPDATE jobs SET log_seq = ? WHERE id = ?", (last, job_id))
        keep_from = retention.first_kept_seq(last, max_log_lines)
        if keep_from > 1:
            conn.execute("DELETE FROM job_logs WHERE job_id = ? AND seq < ?", (job_id, keep_from))


def requeue_pending(conn: sqlite3.Connection) -> list[JobRecord]:
    """Put every job that was owed work back in ``queued`` (the lifecycle's ``requeue``) and
    return every queued job, oldest first."""
    requeue = rule(JobInput.REQUEUE)
    states = sorted(requeue.from_states)
    marks = ", ".join("?" for _ in states)
    conn.execute(f"UPDATE jobs SET state = ? WHERE state IN ({marks})", (requeue.to_state, *states))
    rows = conn.execute(f"{_SELECT} WHERE state = ? ORDER BY created_at, id", (QUEUED,)).fetchall()
    return [_from_row(row) for row in rows]


def scheduled_jobs(conn: sqlite3.Connection) -> list[JobRecord]:
    """Every job waiting for its ``run_at``, soonest first (recovery re-arms them)."""
    rows = conn.execute(f"{_SELECT} WHERE state = ? ORDER BY run_at, id", (SCHEDULED,))
    return [_from_row(row) for row in rows.fetchall()]


def sweep_chunk(conn: sqlite3.Connection, finished_before: float, chunk: int) -> int:
    """Delete up to ``chunk`` finished jobs (and their logs) that finished before the cutoff."""
    states = sorted(FINISHED_STATES)
    marks = ", ".join("?" for _ in states)
    ids = [
        (row[0],)
        for row in conn.execute(
            f"SELECT id FROM jobs WHERE finished_at < ? AND state IN ({marks}) LIMIT ?",
            (finished_before, *states, chunk),
        )
    ]
    conn.executemany("DELETE FROM job_logs WHERE job_id = ?", ids)
    conn.executemany("DELETE FROM jobs WHERE id = ?", ids)
    return len(ids)


# -- reads ------------------------------------------------------------------------------------


def get(conn: sqlite3.Connection, job_id: str) -> JobRecord | None:
    row = conn.execute(f"{_SELECT} WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else _from_row(row)


def list_page(
    conn: sqlite3.Connection,
    *,
    state: str | None,
    limit: int,
    before: tuple[float, str] | None,
    tenant: str | None = None,
) -> tuple[list[JobRecord], bool]:
    """Up to ``limit`` jobs (of ``tenant``, or of every tenant for ``None``), newest first by
    ``(created_at, id)``, strictly before ``before``; the flag says whether more jobs follow.
    The tenant is part of the query (an index serves it), so every page is full."""
    where = []
    params: list[Any] = []
    if tenant is not None:
        where.append("tenant = ?")
        params.append(tenant)
    if state is not None:
        where.append("state = ?")
        params.append(state)
    if before is not None:
        where.append("(created_at, id) < (?, ?)")
        params.extend(before)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"{_SELECT}{clause} ORDER BY created_at DESC, id DESC LIMIT ?", (*params, limit + 1)
    ).fetchall()
    return [_from_row(row) for row in rows[:limit]], len(rows) > limit


def logs(conn: sqlite3.Connection, job_id: str, *, after: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT seq, ts, stream, line FROM job_logs WHERE job_id = ? AND seq > ? "
        "ORDER BY seq LIMIT ?",
        (job_id, after, limit),
    ).fetchall()
    return [
        {"seq": row["seq"], "ts": iso_utc(row["ts"]), "stream": row["stream"], "line": row["line"]}
        for row in rows
    ]


def count(conn: sqlite3.Connection) -> dict[str, int]:
    """Jobs per state (states with no job are absent)."""
    return {row[0]: row[1] for row in conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY 1")}
