"""Restart recovery: unfinished jobs come back, including after a ``kill -9``."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import trio

from perfgate.store import FAILED, QUEUED, SUCCEEDED, Journal
from tests.store.conftest import FakeClock, make_job

# Writes jobs in every state, says so, then waits to be killed.
_WRITER = textwrap.dedent(
    """
    import sys, trio
    from pathlib import Path
    from perfgate.store import Journal, JobRecord, new_job_id

    async def main(data_dir):
        async with Journal.open(Path(data_dir), max_log_lines=10, result_ttl_s=60) as j:
            ids = {}
            for name in ("queued", "running", "retrying", "succeeded", "dead"):
                job, _ = await j.create(JobRecord(id=name, task="echo", args={"n": name}))
            for name in ("running", "retrying", "succeeded", "dead"):
                await j.mark_running(name)
            await j.mark_retrying("retrying", error="first attempt failed")
            await j.mark_finished("succeeded", "succeeded", result=42)
            await j.mark_finished("dead", "dead", error="gave up")
            for i in range(5):
                await j.append_log("running", f"line {i}", "stdout")
            await j.flush()
            print("ready", flush=True)
            await trio.sleep_forever()

    trio.run(main, sys.argv[1])
    """
)


async def test_kill_9_then_reopen_recovers_unfinished_jobs(tmp_path: Path) -> None:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        received = b""
        with trio.fail_after(30):
            while b"ready\n" not in received:
                chunk = await proc.stdout.receive_some()
                assert chunk, "writer exited before it was ready"
                received += chunk
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    async with Journal.open(tmp_path, max_log_lines=10, result_ttl_s=60) as journal:
        recovered = await journal.recover()
        by_id = {job.id: job for job in recovered}
        assert set(by_id) == {"queued", "running", "retrying"}
        assert all(job.state == QUEUED for job in recovered)
        # at-least-once: the attempts already made are kept, the next start adds one
        assert (by_id["queued"].attempts, by_id["running"].attempts) == (0, 1)
        assert by_id["retrying"].error == "first attempt failed"
        restarted = await journal.mark_running("running")
        assert restarted is not None
        assert restarted.attempts == 2
        assert len(await journal.logs("running")) == 5
        done = await journal.get("succeeded")
        assert done is not None
        assert (done.state, done.result) == (SUCCEEDED, 42)
        # Recovering twice is harmless: the same unfinished jobs, still queued.
        again = await journal.recover()
        assert [job.id for job in again] == [job.id for job in recovered]


async def test_recover_returns_oldest_first_and_skips_finished(
    journal: Journal, clock: FakeClock
) -> None:
    a, _ = await journal.create(make_job(clock))
    b, _ = await journal.create(make_job(clock))
    c, _ = await journal.create(make_job(clock))
    await journal.mark_running(a.id)
    await journal.mark_running(c.id)
    await journal.mark_finished(c.id, FAILED)
    recovered = await journal.recover()
    assert [job.id for job in recovered] == [a.id, b.id]
    assert [job.attempts for job in recovered] == [1, 0]


# Creates jobs as fast as it can, printing each id once ``create`` has returned.
_CHURNER = textwrap.dedent(
    """
    import sys, trio
    from pathlib import Path
    from perfgate.store import Journal, JobRecord, new_job_id

    async def main(data_dir):
        async with Journal.open(Path(data_dir), max_log_lines=10, result_ttl_s=60) as j:
            async def one(worker):
                while True:
                    job, _ = await j.create(JobRecord(id=new_job_id(), task="echo", args={}))
                    await j.append_log(job.id, "hello", "stdout")
                    print(job.id, flush=True)

            async with trio.open_nursery() as nursery:
                for worker in range(4):
                    nursery.start_soon(one, worker)

    trio.run(main, sys.argv[1])
    """
)


async def test_every_acknowledged_create_survives_kill_9_mid_write(tmp_path: Path) -> None:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", _CHURNER, str(tmp_path)], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        received = b""
        with trio.fail_after(30):
            while received.count(b"\n") < 200:
                chunk = await proc.stdout.receive_some()
                assert chunk, "writer exited early"
                received += chunk
    finally:
        proc.send_signal(signal.SIGKILL)  # while it is still writing
        await proc.wait()
    acknowledged = received.rpartition(b"\n")[0].decode().split("\n")
    assert len(acknowledged) >= 200

    async with Journal.open(tmp_path, max_log_lines=10, result_ttl_s=60) as journal:
        recovered = {job.id for job in await journal.recover()}
        assert set(acknowledged) <= recovered
        for job_id in acknowledged[:20]:
            assert await journal.get(job_id) is not None
