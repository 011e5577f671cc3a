"""Only what is promised pays for an fsync: a batch holding nothing but job starts (and
progress or log lines) commits without one; creates and final states are fsynced, and so is
any batch that holds one. A start that was not fsynced is still recovered like any other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from perfgate.store import JobRecord, Journal, new_job_id


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    async with Journal.open(tmp_path / "data", max_log_lines=100, result_ttl_s=60) as opened:
        yield opened


def _trace(journal: Journal) -> list[str]:
    statements: list[str] = []
    journal._writer.conn.set_trace_callback(statements.append)
    return statements


def _relaxed(statements: list[str]) -> int:
    return sum("synchronous = NORMAL" in s for s in statements)


async def test_a_start_alone_is_not_fsynced_and_everything_else_is(journal: Journal) -> None:
    statements = _trace(journal)
    job, _ = await journal.create(JobRecord(id=new_job_id(), task="echo", args={}))
    assert _relaxed(statements) == 0
    await journal.mark_running(job.id)
    assert _relaxed(statements) == 1  # the start's batch
    await journal.set_progress(job.id, 0.5)
    await journal.flush()  # the progress is committed (alone: relaxed; with the flush: not)
    statements.clear()
    await journal.mark_finished(job.id, "succeeded", result=1)
    assert _relaxed(statements) == 0
    assert await journal.synchronous() == "FULL"  # restored after the relaxed commit


async def test_a_start_sharing_a_batch_with_a_create_is_fsynced(journal: Journal) -> None:
    first, _ = await journal.create(JobRecord(id=new_job_id(), task="echo", args={}))
    statements = _trace(journal)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(journal.mark_running, first.id)
        nursery.start_soon(journal.create, JobRecord(id=new_job_id(), task="echo", args={}))
    assert any(s == "COMMIT" for s in statements)
    assert _relaxed(statements) == 0


async def test_a_start_that_was_not_fsynced_is_recovered(tmp_path: Path) -> None:
    async with Journal.open(tmp_path / "data", max_log_lines=100, result_ttl_s=60) as journal:
        job, _ = await journal.create(JobRecord(id=new_job_id(), task="echo", args={}))
        await journal.mark_running(job.id)
    async with Journal.open(tmp_path / "data", max_log_lines=100, result_ttl_s=60) as journal:
        [recovered] = await journal.recover()
        assert (recovered.id, recovered.state, recovered.attempts) == (job.id, "queued", 1)
