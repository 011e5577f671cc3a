"""A full disk: a job's state change the journal cannot write is retried, not dropped, and
logged once without a traceback; the job reaches its final state once space returns."""

from __future__ import annotations

import errno
import itertools
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from perfgate.errors import Unavailable
from perfgate.jobs import JobService
from perfgate.jobs.durable import RETRY_CAP_S, write_durably
from perfgate.jobs.events import PoolEvents
from perfgate.pool import Pool
from perfgate.readiness import Phase, Readiness
from perfgate.store import Journal
from tests.conftest import make_config
from tests.helpers import server_log, start_server, stop_server, tmpfs

DISK_FULL = [
    sqlite3.OperationalError("database or disk is full"),
    OSError(errno.ENOSPC, "No space left on device"),
    Unavailable("journal write failed: database or disk is full"),
]


class FullDiskJournal:
    """A real journal whose state transitions fail ``failures`` times first, as a full disk
    makes them fail; everything else passes through."""

    def __init__(self, journal: Journal, error: Exception, failures: int) -> None:
        self._journal = journal
        self.error = error
        self.left = failures
        self.refused: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._journal, name)
        if not name.startswith("mark_"):
            return target

        async def failing(*args: Any, **kwargs: Any) -> Any:
            if self.left > 0:
                self.left -= 1
                self.refused.append(name)
                await trio.lowlevel.checkpoint()
                raise self.error
            return await target(*args, **kwargs)

        return failing


@pytest.mark.parametrize("error", DISK_FULL, ids=lambda e: type(e).__name__)
async def test_a_state_change_refused_by_a_full_disk_is_written_once_space_returns(
    tmp_path: Path, error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path)
    readiness = Readiness()
    readiness.advance(Phase.READY)
    published: list[tuple[str, Any]] = []

    async def publish(channel: str, data: Any) -> int:
        published.append((channel, data))
        return len(published)

    async with Journal.open(tmp_path / "data", max_log_lines=100, result_ttl_s=60) as journal:
        # Enough failures to refuse the running state and then the final one.
        flaky = FullDiskJournal(journal, error, failures=5)
        events = PoolEvents()
        async with Pool(config.pool, config.tasks, on_event=events.put) as pool:
            service = JobService(
                config=config,
                pool=pool,
                journal=flaky,  # type: ignore[arg-type]
                publish=publish,
                readiness=readiness,
                events=events,
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(service.run)
                with caplog.at_level(logging.INFO):
                    job, _ = await service.submit({"task": "echo", "args": {"x": 1}})
                    with trio.fail_after(20):
                        done = await service.wait(job.id, 20)
                nursery.cancel_scope.cancel()
    assert flaky.left == 0 and flaky.refused[0] == "mark_running"
    assert (done.state, done.attempts, done.result) == ("succeeded", 1, {"x": 1})
    states = [data["state"] for _, data in published if data.get("event") == "state"]
    assert states == ["queued", "running", "succeeded"]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    # One line for the refused write (retried five times), none with a traceback.
    assert [r.getMessage() for r in warnings] == ["job state not written; retrying"]
    assert all(r.exc_info is None for r in caplog.records)


async def test_write_durably_backs_off_and_logs_the_outage_once(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[float] = []

    async def write(value: str) -> str:
        calls.append(trio.current_time())
        if len(calls) <= 8:
            raise sqlite3.OperationalError("database or disk is full")
        return value

    with caplog.at_level(logging.INFO):
        assert await write_durably(write, "done", job_id="j1", state="succeeded") == "done"
    assert len(calls) == 9
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(0 <= gap <= RETRY_CAP_S for gap in gaps)
    assert [r.getMessage() for r in caplog.records] == [
        "job state not written; retrying",
        "job state written",
    ]
    assert all(r.exc_info is None for r in caplog.records)


async def test_write_durably_lets_a_bug_through(autojump_clock: Any) -> None:
    async def write() -> None:
        raise KeyError("a bug, not a full disk")

    with pytest.raises(KeyError):
        await write_durably(write, job_id="j1", state="running")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/data`` on a 4 MiB tmpfs, so that the test can fill it (needs root)."""
    with tmpfs(tmp_path / "data", "size=4m") as where:
        yield where


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_jobs_that_finish_while_the_disk_is_full_finish_once_space_returns(
    tmp_path: Path, small_disk: Path
) -> None:
    proc, ready = start_server(tmp_path, env={"PERFGATE_POOL_MAX_WORKERS": "4"})
    api = ready["http"]
    try:
        ids = []
        for i in range(4):
            body = {
                "task": "sleep",
                "args": {"seconds": 2.0, "steps": 2},
                "idempotency_key": f"{i}",
            }
            response = httpx.post(api + "/v1/jobs", json=body, timeout=10)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        submitted = time.monotonic()
        filler = fill(small_disk)
        refused = httpx.post(api + "/v1/jobs", json={"task": "echo", "args": {}}, timeout=10)
        assert refused.status_code == 503 and "Retry-After" in refused.headers
        # The jobs end (after their 2 s) while the disk is still full.
        time.sleep(max(0.0, submitted + 3.0 - time.monotonic()))
        assert "journal writes failing" in server_log(proc)
        filler.unlink()
        jobs = [httpx.get(f"{api}/v1/jobs/{j}?wait=20", timeout=30).json() for j in ids]
        assert [job["state"] for job in jobs] == ["succeeded"] * len(ids)
    finally:
        code, err = stop_server(proc)
    assert code == 0, err
    assert "Traceback" not in err, err
    assert err.count("journal writes failing") == 1, err
