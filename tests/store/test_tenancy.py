"""Tenants in the SQLite journal: per-tenant listing and idempotency keys, and the migration
of a journal written before tenants existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs
import pytest

from perfgate.config import DEFAULT_TENANT
from perfgate.errors import Conflict
from perfgate.store import JobRecord, Journal
from perfgate.store._sql import FILENAME, SCHEMA_VERSION
from tests.store.conftest import FakeClock, make_job

#: The version-1 schema, as perfgate wrote it before tenants (no ``tenant`` column, and
#: idempotency keys unique across the whole journal).
V1_SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, task TEXT NOT NULL, args TEXT NOT NULL, state TEXT NOT NULL,
    priority TEXT NOT NULL, attempts INTEGER NOT NULL, progress REAL NOT NULL,
    progress_message TEXT, result TEXT NOT NULL, error TEXT NOT NULL,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL, idempotency_key TEXT,
    fingerprint TEXT, timeout_s REAL, max_retries INTEGER NOT NULL, cached INTEGER NOT NULL,
    log_seq INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX jobs_by_idempotency_key
    ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_by_created ON jobs (created_at, id);
CREATE INDEX jobs_by_state_created ON jobs (state, created_at, id);
CREATE INDEX jobs_by_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE job_logs (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL, stream TEXT NOT NULL,
    line TEXT NOT NULL, PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
PRAGMA user_version = 1;
"""


def owned(clock: FakeClock, tenant: str) -> JobRecord:
    return attrs.evolve(make_job(clock), tenant=tenant)


async def test_a_tenants_listing_is_its_own_and_pages_are_full(
    journal: Journal, clock: FakeClock
) -> None:
    ids: dict[str, list[str]] = {"acme": [], "bravo": []}
    for i in range(9):
        tenant = "acme" if i % 3 == 0 else "bravo"
        record, _ = await journal.create(owned(clock, tenant))
        ids[tenant].insert(0, record.id)
    pages: list[list[str]] = []
    cursor = None
    while True:
        page, cursor = await journal.list_jobs(limit=2, cursor=cursor, tenant="acme")
        pages.append([r.id for r in page])
        if cursor is None:
            break
    assert pages == [ids["acme"][:2], ids["acme"][2:]]
    running, _ = await journal.list_jobs(state="running", tenant="bravo")
    assert running == []
    everyone, _ = await journal.list_jobs(limit=100)
    assert len(everyone) == 9
    assert (await journal.get(ids["acme"][0])).tenant == "acme"  # type: ignore[union-attr]


async def test_idempotency_keys_are_per_tenant(journal: Journal, clock: FakeClock) -> None:
    a, created_a = await journal.create(owned(clock, "acme"), idempotency_key="k", fingerprint="f")
    b, created_b = await journal.create(owned(clock, "bravo"), idempotency_key="k", fingerprint="g")
    assert created_a and created_b and a.id != b.id
    again, created = await journal.create(
        owned(clock, "bravo"), idempotency_key="k", fingerprint="g"
    )
    assert not created and again.id == b.id
    with pytest.raises(Conflict):
        await journal.create(owned(clock, "acme"), idempotency_key="k", fingerprint="g")


async def test_a_journal_from_before_tenants_opens_and_is_migrated(
    tmp_path: Path, clock: FakeClock
) -> None:
    conn = sqlite3.connect(tmp_path / FILENAME)
    conn.executescript(V1_SCHEMA)
    conn.execute(
        "INSERT INTO jobs (id, task, args, state, priority, attempts, progress, result, error,"
        " created_at, idempotency_key, fingerprint, max_retries, cached)"
        " VALUES ('old1', 'echo', '{\"x\":1}', 'succeeded', 'normal', 1, 1.0, '1', 'null',"
        " 1000.0, 'key', 'f', 0, 0)"
    )
    conn.commit()
    conn.close()

    async with Journal.open(tmp_path, max_log_lines=5, result_ttl_s=100.0, clock=clock) as j:
        old = await j.get("old1")
        assert old is not None and old.tenant == DEFAULT_TENANT and old.result == 1
        # With no tokens every job is the default tenant's, as before: its key still holds.
        same, created = await j.create(
            owned(clock, DEFAULT_TENANT), idempotency_key="key", fingerprint="f"
        )
        assert not created and same.id == "old1"
        # Another tenant's use of the key is its own.
        mine, created = await j.create(owned(clock, "acme"), idempotency_key="key", fingerprint="z")
        assert created and mine.tenant == "acme"
        page, _ = await j.list_jobs(tenant=DEFAULT_TENANT)
        assert [r.id for r in page] == ["old1"]

    conn = sqlite3.connect(tmp_path / FILENAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "jobs_by_idempotency_key" not in indexes
    conn.close()
    # Opening a migrated journal again is a no-op.
    async with Journal.open(tmp_path, max_log_lines=5, result_ttl_s=100.0, clock=clock) as j:
        assert (await j.get("old1")) is not None
