"""A job without an idempotency key is queued as soon as its row is in the journal's write
queue, before the commit: it may start (and finish) while the row commits, but its submit
still returns only once the row is committed, and nothing the run did (its start, its
result) is written or published before the row is."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from perfgate.store import Journal, new_job_id
from tests.conftest import make_config
from tests.jobs.service_helpers import service_over_pool


async def test_a_job_runs_during_its_commit_and_shows_nothing_before_it(
    tmp_path: Path, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = journal._writer
    commit = writer._commit
    gate = threading.Event()

    def held_commit(batch: list[Any]) -> None:
        assert gate.wait(20), "the test never opened the gate"
        commit(batch)

    published: list[tuple[bool, str]] = []

    async def publish(channel: str, data: Any) -> int:
        published.append((gate.is_set(), str(data.get("state") or data.get("event"))))
        return 0

    config = make_config(tmp_path)
    async with (
        service_over_pool(config, journal, publish) as service,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(service.run)
        monkeypatch.setattr(writer, "_commit", held_commit)
        job_id = new_job_id()
        answered: list[str] = []

        async def submit() -> None:
            record, _ = await service.submit({"task": "echo", "args": {"x": 1}}, job_id=job_id)
            answered.append(record.state)

        nursery.start_soon(submit)
        with trio.fail_after(10):
            while not service.pool.is_live(job_id):  # noqa: ASYNC110
                await trio.sleep(0.005)
        # Queued in the pool while its row waits for the commit: not answered, not shown.
        await trio.sleep(0.2)  # time for the run to report its events, if it is quick
        assert answered == []
        assert [state for _, state in published if state != "queued"] == []
        gate.set()
        with trio.fail_after(10):
            while not answered:  # noqa: ASYNC110
                await trio.sleep(0.005)
            done = await service.wait(job_id, 10)
        assert answered == ["queued"]
        assert done.state == "succeeded"
        shown = [state for _, state in published if state != "queued"]
        assert shown == ["running", "result", "succeeded"]
        # The pool's own "queued" (nothing to write: the row says so) may precede the commit.
        assert all(opened for opened, state in published if state != "queued")
        nursery.cancel_scope.cancel()
