"""Durability as configured and as seen over HTTP: the journal commits with
``synchronous=FULL``, and a 202 is never sent before the job's commit."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import trio

from perfgate.store import Journal


async def test_the_writer_commits_with_synchronous_full(tmp_path: Path) -> None:
    async with Journal.open(tmp_path, max_log_lines=10, result_ttl_s=60) as journal:
        assert await journal.synchronous() == "FULL"
        assert await journal.journal_mode() == "wal"


async def test_a_202_is_never_answered_before_the_job_is_committed(
    service: Any, tmp_path: Path
) -> None:
    """Another connection holds SQLite's write lock, so the journal's commit waits: the POST
    must wait with it, and the job must be on disk when the 202 arrives."""
    database = tmp_path / "data" / "journal.sqlite3"
    blocker = sqlite3.connect(database, isolation_level=None)
    answer: dict[str, httpx.Response] = {}
    try:
        blocker.execute("BEGIN IMMEDIATE")
        async with httpx.AsyncClient(timeout=30) as http, trio.open_nursery() as nursery:

            async def submit() -> None:
                body = {"task": "echo", "args": {"x": 1}, "idempotency_key": "held"}
                answer["post"] = await http.post(service.http + "/v1/jobs", json=body)

            nursery.start_soon(submit)
            # Long enough for an uncommitted answer to arrive many times over on loopback.
            await trio.sleep(1.0)
            assert "post" not in answer, "answered while the commit was held"
            blocker.execute("ROLLBACK")
    finally:
        blocker.close()
    assert answer["post"].status_code == 202
    job_id = answer["post"].json()["id"]
    reader = sqlite3.connect(database)
    try:
        row = reader.execute("SELECT id FROM jobs WHERE id = ?", (job_id,)).fetchone()
    finally:
        reader.close()
    assert row == (job_id,)
