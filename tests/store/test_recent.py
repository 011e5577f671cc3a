"""The journal answers job reads from memory only with what it committed: a read right after
each write returns that write, on disk and in memory alike; anything the writer cannot vouch
for (the sweep, a failed write, progress) goes back to the disk. The cache is bounded."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import attrs
import pytest

from perfgate.errors import Conflict
from perfgate.store import JobRecord, Journal, _sql, new_job_id
from perfgate.store.recent import RecentJobs, approx_json_bytes, records_of


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def journal(tmp_path: Path, clock: Clock) -> AsyncIterator[Journal]:
    async with Journal.open(
        tmp_path / "data", max_log_lines=100, result_ttl_s=60, clock=clock, sweep=False
    ) as opened:
        yield opened


@pytest.fixture
def disk(tmp_path: Path, journal: Journal) -> Iterator[sqlite3.Connection]:
    conn = _sql.connect(tmp_path / "data", readonly=True)  # the file, not the journal's memory
    yield conn
    conn.close()


def _job(**fields: object) -> JobRecord:
    return attrs.evolve(JobRecord(id=new_job_id(), task="echo", args={"x": 1}), **fields)


async def _same(journal: Journal, disk: sqlite3.Connection, job_id: str) -> JobRecord | None:
    read = await journal.get(job_id)
    assert read == _sql.get(disk, job_id)
    return read


async def test_a_read_right_after_each_transition_returns_it(
    journal: Journal, disk: sqlite3.Connection, clock: Clock
) -> None:
    job, _ = await journal.create(_job(max_retries=2))
    assert (await _same(journal, disk, job.id)).state == "queued"  # type: ignore[union-attr]
    assert journal.stats().recent_jobs == 1
    clock.now += 1
    await journal.mark_running(job.id)
    assert (await _same(journal, disk, job.id)).attempts == 1  # type: ignore[union-attr]
    await journal.set_progress(job.id, 0.5, "half")
    await journal.flush()
    read = await _same(journal, disk, job.id)
    assert read is not None and (read.state, read.progress) == ("running", 0.5)
    await journal.mark_retrying(job.id, error={"type": "Boom", "message": "x"})
    assert (await _same(journal, disk, job.id)).state == "retrying"  # type: ignore[union-attr]
    await journal.mark_running(job.id)
    await journal.mark_finished(job.id, "succeeded", result={"ok": True})
    read = await _same(journal, disk, job.id)
    assert read is not None and (read.state, read.result, read.attempts) == (
        "succeeded",
        {"ok": True},
        2,
    )
    assert await journal.cancel(job.id) is None  # refused: the first final state wins
    assert (await _same(journal, disk, job.id)).state == "succeeded"  # type: ignore[union-attr]


async def test_batch_creates_and_idempotent_hits_are_read_as_written(
    journal: Journal, disk: sqlite3.Connection
) -> None:
    first = _job()
    outcomes = await journal.create_many(
        [(first, "k", "f1"), (_job(), "k", "f2"), (_job(), None, None)]
    )
    assert isinstance(outcomes[1], Conflict)
    for outcome in outcomes:
        if isinstance(outcome, tuple):
            await _same(journal, disk, outcome[0].id)
    again, created = await journal.create(_job(), idempotency_key="k", fingerprint="f1")
    assert not created and again.id == first.id
    await _same(journal, disk, first.id)


async def test_the_sweep_and_a_restart_leave_nothing_stale(
    tmp_path: Path, journal: Journal, disk: sqlite3.Connection, clock: Clock
) -> None:
    job, _ = await journal.create(_job())
    await journal.mark_finished(job.id, "failed", error={"type": "E", "message": "m"})
    assert await journal.get(job.id) is not None
    assert await journal.sweep(clock.now + 61) == 1
    assert await journal.get(job.id) is None  # deleted: never served from memory


async def test_past_retention_the_disk_decides(journal: Journal, clock: Clock) -> None:
    job, _ = await journal.create(_job())
    await journal.mark_finished(job.id, "succeeded", result=1)
    clock.now += 61  # expired, not yet swept: still on disk, read from there
    read = await journal.get(job.id)
    assert read is not None and read.state == "succeeded"
    assert journal.stats().recent_jobs == 0


def test_bounded_by_count_newest_kept() -> None:
    recent = RecentJobs(60, max_jobs=3)
    jobs = [_job() for _ in range(5)]
    for job in jobs:
        recent.put(job)
    assert len(recent) == 3
    assert [recent.get(j.id, 0) is not None for j in jobs] == [False, False, True, True, True]


def test_large_records_are_left_to_the_disk() -> None:
    recent = RecentJobs(60, record_max_bytes=1024)
    small = _job()
    recent.put(small)
    recent.put(big := _job(args={"blob": "x" * 2000}))
    recent.put(attrs.evolve(small, result=["y" * 100] * 20))  # grew past the limit: dropped
    assert recent.get(big.id, 0) is None and recent.get(small.id, 0) is None
    assert approx_json_bytes({"a": ["bc", 1, None]}, 10_000) < 40
    assert approx_json_bytes(["z" * 10] * 1_000_000, 100) > 100


def test_records_of_every_write_result() -> None:
    job = _job()
    assert records_of(job) == [job]
    assert records_of((job, True)) == [job]
    assert records_of([(job, False), Conflict("x"), None]) == [job]
    assert records_of(None) == [] and records_of(3) == []
