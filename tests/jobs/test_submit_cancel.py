"""A submit cancelled while its journal write waits for the writer: the write still commits
(the writer does not unqueue it), so the job must also be queued and run, not left
``queued`` in the journal with nothing owing it work until a restart recovers it."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from perfgate.store import Journal, new_job_id
from tests.conftest import make_config
from tests.jobs.service_helpers import service_over_pool


async def test_a_submit_cancelled_during_its_commit_still_runs_its_job(
    tmp_path: Path, journal: Journal
) -> None:
    config = make_config(tmp_path)
    async with service_over_pool(config, journal) as service, trio.open_nursery() as nursery:
        await nursery.start(service.run)
        job_id = new_job_id()
        with trio.CancelScope() as scope:
            nursery.start_soon(trio.sleep_forever)  # keeps the nursery open below

            async def cancel_once_queued() -> None:
                # Every task blocked: the submit waits for its commit, the writer is in its
                # thread (or about to take the write). Cancel the submit there.
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()

            nursery.start_soon(cancel_once_queued)
            await service.submit({"task": "echo", "args": {"x": 1}}, job_id=job_id)
            # Reached only when the commit's outcome is awaited through the cancellation.
            assert scope.cancel_called, "the submit finished before it could be cancelled"
        with trio.fail_after(10):
            while (await journal.get(job_id)) is None:  # noqa: ASYNC110
                await trio.sleep(0.01)
            done = await service.wait(job_id, 30)
        assert done.state == "succeeded", done
        nursery.cancel_scope.cancel()
