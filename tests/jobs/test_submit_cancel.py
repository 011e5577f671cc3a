"""A submit cancelled while its journal write waits for the commit: the write still commits
(the writer does not unqueue it), so the job must also be queued and run, not left
``queued`` in the journal with nothing owing it work until a restart recovers it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from perfgate.store import Journal, new_job_id
from tests.conftest import make_config
from tests.jobs.service_helpers import service_over_pool


async def test_a_submit_cancelled_during_its_commit_still_runs_its_job(
    tmp_path: Path, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = journal._writer
    commit = writer._commit
    entered, gate = threading.Event(), threading.Event()

    def held_commit(batch: list[Any]) -> None:
        entered.set()
        assert gate.wait(20), "the test never opened the gate"
        commit(batch)

    config = make_config(tmp_path)
    async with service_over_pool(config, journal) as service, trio.open_nursery() as nursery:
        await nursery.start(service.run)
        monkeypatch.setattr(writer, "_commit", held_commit)
        job_id = new_job_id()
        # With an idempotency key the job is queued only once its row committed.
        body = {"task": "echo", "args": {"x": 1}, "idempotency_key": "k"}
        with trio.CancelScope() as scope:

            async def cancel_during_the_commit() -> None:
                await trio.to_thread.run_sync(entered.wait)
                scope.cancel()
                gate.set()

            nursery.start_soon(cancel_during_the_commit)
            await service.submit(body, job_id=job_id)
        with trio.fail_after(10):
            while (await journal.get(job_id)) is None:  # noqa: ASYNC110
                await trio.sleep(0.01)
            done = await service.wait(job_id, 10)
        assert done.state == "succeeded", done
        nursery.cancel_scope.cancel()
