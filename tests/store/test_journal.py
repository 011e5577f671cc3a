"""The journal as its callers see it: durable writes, idempotency, listing, logs, retention."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs
import pytest
import trio

from perfgate.errors import BadRequest, Conflict, NotFound, Unavailable, ValidationError
from perfgate.store import (
    CANCELLED,
    DEAD,
    FAILED,
    QUEUED,
    RETRYING,
    RUNNING,
    SUCCEEDED,
    Journal,
    body_fingerprint,
)
from tests.store.conftest import FakeClock, make_job


async def test_create_then_get(journal: Journal, clock: FakeClock) -> None:
    job = make_job(clock, x=1)
    stored, created = await journal.create(job)
    assert created
    assert stored == job
    assert await journal.get(job.id) == job
    assert await journal.get("nope") is None


async def test_job_survives_close_and_reopen(tmp_path: Path, clock: FakeClock) -> None:
    job = make_job(clock, data="é" * 10, nested={"a": [1, 2.5, None]})
    async with Journal.open(tmp_path, max_log_lines=10, result_ttl_s=60, clock=clock) as j:
        await j.create(job)
        await j.mark_running(job.id)
    async with Journal.open(tmp_path, max_log_lines=10, result_ttl_s=60, clock=clock) as j:
        again = await j.get(job.id)
    assert again is not None
    assert again.args == job.args
    assert again.state == RUNNING
    assert again.attempts == 1


async def test_wal_mode_is_on(journal: Journal, tmp_path: Path) -> None:
    assert await journal.journal_mode() == "wal"
    # And it is the file's persistent mode, as any other process opening it sees.
    conn = sqlite3.connect(tmp_path / "journal.sqlite3")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


async def test_create_is_durable_on_return_for_another_connection(
    journal: Journal, tmp_path: Path, clock: FakeClock
) -> None:
    job = make_job(clock)
    await journal.create(job)
    conn = sqlite3.connect(tmp_path / "journal.sqlite3")
    try:
        assert conn.execute("SELECT state FROM jobs WHERE id = ?", (job.id,)).fetchone() == (
            QUEUED,
        )
    finally:
        conn.close()


# -- idempotency ------------------------------------------------------------------------------


async def test_same_key_same_body_returns_the_first_job(journal: Journal, clock: FakeClock) -> None:
    body = {"task": "echo", "args": {"x": 1}}
    first, created = await journal.create(
        make_job(clock, x=1), idempotency_key="k", fingerprint=body_fingerprint(body)
    )
    assert created
    again, created_again = await journal.create(
        make_job(clock, x=1), idempotency_key="k", fingerprint=body_fingerprint(body)
    )
    assert not created_again
    assert again.id == first.id
    jobs, _ = await journal.list_jobs()
    assert len(jobs) == 1


async def test_same_key_different_body_is_a_conflict(journal: Journal, clock: FakeClock) -> None:
    await journal.create(
        make_job(clock, x=1), idempotency_key="k", fingerprint=body_fingerprint({"args": {"x": 1}})
    )
    with pytest.raises(Conflict):
        await journal.create(
            make_job(clock, x=2),
            idempotency_key="k",
            fingerprint=body_fingerprint({"args": {"x": 2}}),
        )
    jobs, _ = await journal.list_jobs()
    assert len(jobs) == 1


async def test_concurrent_creates_with_one_key_make_one_job(
    journal: Journal, clock: FakeClock
) -> None:
    results: list[tuple[str, bool]] = []

    async def submit() -> None:
        job, created = await journal.create(make_job(clock), idempotency_key="k", fingerprint="f")
        results.append((job.id, created))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(submit)
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_a_failing_write_does_not_undo_its_batch_neighbours(
    journal: Journal, clock: FakeClock
) -> None:
    await journal.create(make_job(clock), idempotency_key="k", fingerprint="a")
    outcomes: list[object] = []

    async def create(key: str, fingerprint: str) -> None:
        try:
            outcomes.append(
                (
                    await journal.create(
                        make_job(clock), idempotency_key=key, fingerprint=fingerprint
                    )
                )[1]
            )
        except Conflict:
            outcomes.append("conflict")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(create, "k", "b")
        nursery.start_soon(create, "other", "c")
        nursery.start_soon(create, "k", "d")
    assert sorted(map(str, outcomes)) == ["True", "conflict", "conflict"]
    jobs, _ = await journal.list_jobs()
    assert len(jobs) == 2


# -- transitions ------------------------------------------------------------------------------


async def test_lifecycle_with_a_retry(journal: Journal, clock: FakeClock) -> None:
    job, _ = await journal.create(make_job(clock))
    clock.advance(1)
    running = await journal.mark_running(job.id)
    assert running is not None
    assert (running.state, running.attempts, running.started_at) == (RUNNING, 1, clock.now)
    retrying = await journal.mark_retrying(job.id, error="boom")
    assert retrying is not None
    assert (retrying.state, retrying.error) == (RETRYING, "boom")
    running = await journal.mark_running(job.id)
    assert running is not None
    assert running.attempts == 2
    clock.advance(2)
    done = await journal.mark_finished(job.id, SUCCEEDED, result={"ok": True})
    assert done is not None
    assert (done.state, done.result, done.error, done.progress) == (
        SUCCEEDED,
        {"ok": True},
        None,
        1.0,
    )
    assert done.finished_at == clock.now
    assert done.to_json()["finished_at"].endswith("Z")


async def test_first_final_state_wins(journal: Journal, clock: FakeClock) -> None:
    job, _ = await journal.create(make_job(clock))
    await journal.mark_running(job.id)
    cancelled = await journal.cancel(job.id)
    assert cancelled is not None
    assert cancelled.state == CANCELLED
    assert await journal.mark_finished(job.id, FAILED, error="late") is None
    assert await journal.cancel(job.id) is None  # idempotent
    stored = await journal.get(job.id)
    assert stored is not None
    assert stored.state == CANCELLED


async def test_a_cancelled_queued_job_cannot_start(journal: Journal, clock: FakeClock) -> None:
    job, _ = await journal.create(make_job(clock))
    await journal.cancel(job.id)
    assert await journal.mark_running(job.id) is None
    assert await journal.mark_retrying(job.id, error="x") is None


async def test_transitions_on_an_unknown_job_raise_not_found(journal: Journal) -> None:
    with pytest.raises(NotFound):
        await journal.mark_running("missing")
    with pytest.raises(NotFound):
        await journal.mark_finished("missing", DEAD)


async def test_mark_finished_refuses_a_non_final_state(journal: Journal) -> None:
    with pytest.raises(ValueError):
        await journal.mark_finished("x", RUNNING)


async def test_cached_result_is_recorded(journal: Journal, clock: FakeClock) -> None:
    job, _ = await journal.create(make_job(clock))
    done = await journal.mark_finished(job.id, SUCCEEDED, result=[1, 2], cached=True)
    assert done is not None
    assert done.cached
    assert done.to_json()["cached"] is True


async def test_progress_is_batched_and_only_while_running(
    journal: Journal, clock: FakeClock
) -> None:
    job, _ = await journal.create(make_job(clock))
    await journal.set_progress(job.id, 0.5, "queued, ignored")
    await journal.mark_running(job.id)
    for i in range(1, 101):
        await journal.set_progress(job.id, i / 200, f"step {i}")
    await journal.flush()
    stored = await journal.get(job.id)
    assert stored is not None
    assert (stored.progress, stored.progress_message) == (0.5, "step 100")
    assert journal.stats().batches < journal.stats().ops


# -- listing ----------------------------------------------------------------------------------


async def test_list_pages_newest_first(journal: Journal, clock: FakeClock) -> None:
    ids = [(await journal.create(make_job(clock)))[0].id for _ in range(7)]
    page1, cursor = await journal.list_jobs(limit=3)
    page2, cursor2 = await journal.list_jobs(limit=3, cursor=cursor)
    page3, cursor3 = await journal.list_jobs(limit=3, cursor=cursor2)
    seen = [job.id for job in page1 + page2 + page3]
    assert seen == list(reversed(ids))
    assert cursor3 is None


async def test_pagination_is_stable_while_inserting(journal: Journal, clock: FakeClock) -> None:
    before = [(await journal.create(make_job(clock)))[0].id for _ in range(10)]
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await journal.list_jobs(limit=3, cursor=cursor)
        seen.extend(job.id for job in page)
        # Jobs keep arriving while the client pages through.
        await journal.create(make_job(clock))
        if cursor is None:
            break
    assert seen == list(reversed(before))


async def test_same_timestamp_ties_break_on_id(journal: Journal, clock: FakeClock) -> None:
    jobs = [attrs.evolve(make_job(clock), created_at=clock.now, id=f"id{i}") for i in range(5)]
    for job in jobs:
        await journal.create(job)
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await journal.list_jobs(limit=2, cursor=cursor)
        seen.extend(job.id for job in page)
        if cursor is None:
            break
    assert seen == ["id4", "id3", "id2", "id1", "id0"]


async def test_list_filters_by_state(journal: Journal, clock: FakeClock) -> None:
    a, _ = await journal.create(make_job(clock))
    b, _ = await journal.create(make_job(clock))
    c, _ = await journal.create(make_job(clock))
    await journal.mark_running(b.id)
    await journal.mark_running(c.id)
    await journal.mark_finished(c.id, FAILED, error="x")
    assert [j.id for j in (await journal.list_jobs(state=QUEUED))[0]] == [a.id]
    assert [j.id for j in (await journal.list_jobs(state=RUNNING))[0]] == [b.id]
    assert [j.id for j in (await journal.list_jobs(state=FAILED))[0]] == [c.id]
    assert (await journal.list_jobs(state=DEAD))[0] == []
    assert (await journal.counts())[QUEUED] == 1


async def test_list_rejects_bad_input(journal: Journal) -> None:
    with pytest.raises(BadRequest):
        await journal.list_jobs(cursor="garbage")
    with pytest.raises(ValidationError):
        await journal.list_jobs(state="sleeping")
    with pytest.raises(ValidationError):
        await journal.list_jobs(limit=0)


# -- logs -------------------------------------------------------------------------------------


async def test_logs_keep_the_last_lines(journal: Journal, clock: FakeClock) -> None:
    job, _ = await journal.create(make_job(clock))
    for i in range(1, 13):
        await journal.append_log(job.id, f"line {i}\n", "stdout" if i % 2 else "stderr")
        if i == 3:
            await journal.flush()  # the cap holds across batches, not only within one
    await journal.mark_finished(job.id, FAILED)  # ordered after the lines: no flush needed
    lines = await journal.logs(job.id)
    assert [line["seq"] for line in lines] == [8, 9, 10, 11, 12]  # max_log_lines=5
    assert lines[-1] == {"seq": 12, "ts": lines[-1]["ts"], "stream": "stderr", "line": "line 12"}
    assert [line["line"] for line in await journal.logs(job.id, after=10)] == ["line 11", "line 12"]
    assert len(await journal.logs(job.id, limit=2)) == 2


async def test_one_huge_batch_respects_the_cap(journal: Journal, clock: FakeClock) -> None:
    job, _ = await journal.create(make_job(clock))
    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(journal.append_log, job.id, f"l{i}", "stdout")
    await journal.flush()
    lines = await journal.logs(job.id)
    assert len(lines) == 5
    assert lines[-1]["seq"] == 50


async def test_logs_for_an_unknown_job_are_dropped(journal: Journal) -> None:
    await journal.append_log("ghost", "boo", "stdout")
    await journal.flush()
    assert await journal.logs("ghost") == []


# -- retention --------------------------------------------------------------------------------


async def test_sweep_deletes_only_jobs_finished_past_the_ttl(
    journal: Journal, clock: FakeClock
) -> None:
    old, _ = await journal.create(make_job(clock), idempotency_key="old", fingerprint="f")
    await journal.append_log(old.id, "x", "stdout")
    await journal.mark_finished(old.id, SUCCEEDED)
    clock.advance(60)
    recent, _ = await journal.create(make_job(clock))
    await journal.mark_finished(recent.id, FAILED)
    pending, _ = await journal.create(make_job(clock))
    clock.advance(50)  # old finished 110 s ago, recent 50 s ago; TTL is 100 s
    assert await journal.sweep(clock.now) == 1
    assert await journal.get(old.id) is None
    assert await journal.logs(old.id) == []
    assert await journal.get(recent.id) is not None
    assert await journal.get(pending.id) is not None
    # The idempotency key is free again once its job is gone.
    _, created = await journal.create(make_job(clock), idempotency_key="old", fingerprint="g")
    assert created
    clock.advance(10_000)
    assert await journal.sweep(clock.now) == 1  # recent; never the unfinished ones
    assert await journal.get(pending.id) is not None


async def test_sweep_works_in_chunks(journal: Journal, clock: FakeClock) -> None:
    from perfgate.store.retention import SWEEP_CHUNK

    count = SWEEP_CHUNK + 7
    for _ in range(count):
        job, _ = await journal.create(make_job(clock))
        await journal.mark_finished(job.id, SUCCEEDED)
    clock.advance(1000)
    assert await journal.sweep(clock.now) == count
    assert (await journal.list_jobs())[0] == []


async def test_run_sweeper_sweeps_periodically(tmp_path: Path) -> None:
    clock = FakeClock()
    async with Journal.open(
        tmp_path, max_log_lines=5, result_ttl_s=10.0, clock=clock, sweep=False
    ) as journal:
        job, _ = await journal.create(make_job(clock))
        await journal.mark_finished(job.id, SUCCEEDED)
        clock.advance(11)
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: journal.run_sweeper(period_s=0.01, task_status=task_status)
            )
            # Poll what a client would see; the sweep runs in a thread, so neither an event
            # nor the autojump clock can tell us when it has happened.
            with trio.fail_after(20):
                while await journal.get(job.id) is not None:  # noqa: ASYNC110
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()


# -- lifecycle --------------------------------------------------------------------------------


async def test_use_after_close_is_unavailable(tmp_path: Path, clock: FakeClock) -> None:
    async with Journal.open(tmp_path, max_log_lines=5, result_ttl_s=10.0) as journal:
        pass
    with pytest.raises(Unavailable):
        await journal.create(make_job(clock))
    with pytest.raises(Unavailable):
        await journal.get("x")


async def test_queued_events_are_committed_on_close(tmp_path: Path, clock: FakeClock) -> None:
    async with Journal.open(tmp_path, max_log_lines=100, result_ttl_s=10.0) as journal:
        job, _ = await journal.create(make_job(clock))
        for i in range(20):
            await journal.append_log(job.id, f"l{i}", "stdout")
    async with Journal.open(tmp_path, max_log_lines=100, result_ttl_s=10.0) as journal:
        assert len(await journal.logs(job.id)) == 20


async def test_close_under_cancellation_still_commits_queued_writes(
    tmp_path: Path, clock: FakeClock
) -> None:
    job = make_job(clock)
    with trio.CancelScope() as scope:
        async with Journal.open(tmp_path, max_log_lines=100, result_ttl_s=10.0) as journal:
            await journal.create(job)
            for i in range(10):
                await journal.append_log(job.id, f"l{i}", "stdout")
            scope.cancel()
            await trio.sleep_forever()
    async with Journal.open(tmp_path, max_log_lines=100, result_ttl_s=10.0) as journal:
        assert len(await journal.logs(job.id)) == 10


async def test_concurrent_creates_share_commits(journal: Journal, clock: FakeClock) -> None:
    async with trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(journal.create, make_job(clock))
    assert len((await journal.list_jobs(limit=1000))[0]) == 100
    assert journal.stats().batches < 100


async def test_bad_values_fail_their_own_write_only(journal: Journal, clock: FakeClock) -> None:
    job, _ = await journal.create(make_job(clock))
    await journal.mark_running(job.id)
    with pytest.raises(ValidationError):
        await journal.create(make_job(clock, x=float("nan")))
    with pytest.raises(ValidationError):
        await journal.mark_finished(job.id, SUCCEEDED, result={"bad": {1, 2}})
    await journal.set_progress(job.id, float("nan"), 42)  # type: ignore[arg-type]
    await journal.append_log(job.id, 123, "stdout")  # type: ignore[arg-type]
    done = await journal.mark_finished(job.id, SUCCEEDED, result="fine")
    assert done is not None
    assert done.result == "fine"
    assert [line["line"] for line in await journal.logs(job.id)] == ["123"]


async def test_a_writer_bug_wakes_its_waiters_and_surfaces(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    failures: list[BaseException] = []

    async def waiter(journal: Journal) -> None:
        try:
            await journal.create(make_job(clock))
        except Unavailable as exc:
            failures.append(exc)

    # The waiter runs in a nursery outside the journal's, as an HTTP handler would.
    with pytest.raises(BaseExceptionGroup) as info:
        async with (
            trio.open_nursery() as outside,
            Journal.open(tmp_path, max_log_lines=5, result_ttl_s=10.0) as journal,
        ):
            monkeypatch.setattr(journal._writer, "_commit", broken)
            outside.start_soon(waiter, journal)
            await trio.sleep_forever()
    assert info.group_contains(RuntimeError, match="bug")
    assert len(failures) == 1
