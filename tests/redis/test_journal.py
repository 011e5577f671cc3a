"""The Redis journal against a real redis-server: the same contract as the SQLite journal."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from perfgate.errors import Conflict, NotFound
from perfgate.redis.client import open_redis
from perfgate.redis.journal import RedisJournal
from perfgate.store import JobRecord


@pytest.fixture
async def journal(redis_url: str) -> AsyncIterator[RedisJournal]:
    async with open_redis(redis_url) as client:
        yield RedisJournal(client, max_log_lines=3, result_ttl_s=60)


def job(job_id: str, created_at: float, **fields: object) -> JobRecord:
    return JobRecord(id=job_id, task="echo", args={"x": 1}, created_at=created_at, **fields)  # type: ignore[arg-type]


async def test_create_get_and_enqueue(journal: RedisJournal) -> None:
    record, created = await journal.create(job("a1", 1000.5))
    assert created and record.id == "a1"
    stored = await journal.get("a1")
    assert stored == record
    assert await journal.get("nope") is None
    assert await journal.client.xlen(journal.keys.stream("normal")) == 1


async def test_idempotency_key_same_body_and_conflict(journal: RedisJournal) -> None:
    _first, created = await journal.create(
        job("k1", 1.0, fingerprint="f"), idempotency_key="key", fingerprint="f"
    )
    again, created_again = await journal.create(
        job("k2", 2.0, fingerprint="f"), idempotency_key="key", fingerprint="f"
    )
    assert created and not created_again and again.id == "k1"
    with pytest.raises(Conflict):
        await journal.create(
            job("k3", 3.0, fingerprint="g"), idempotency_key="key", fingerprint="g"
        )
    assert await journal.get("k3") is None


async def test_transitions_first_final_state_wins(journal: RedisJournal) -> None:
    await journal.create(job("t1", 1.0))
    running = await journal.mark_running("t1")
    assert running is not None and running.state == "running" and running.attempts == 1
    assert await journal.mark_running("t1") is None
    retrying = await journal.mark_retrying("t1", error={"message": "boom"})
    assert retrying is not None and retrying.error == {"message": "boom"}
    assert (await journal.mark_running("t1")).attempts == 2  # type: ignore[union-attr]
    await journal.set_progress("t1", 0.5, "half")
    cancelled = await journal.cancel("t1")
    assert cancelled is not None and cancelled.state == "cancelled"
    assert cancelled.progress == 0.5 and cancelled.progress_message == "half"
    assert await journal.mark_finished("t1", "succeeded", result=1) is None
    assert (await journal.get("t1")).state == "cancelled"  # type: ignore[union-attr]
    ttl = await journal.client.ttl(journal.keys.job("t1"))
    assert 0 < ttl <= 60
    with pytest.raises(NotFound):
        await journal.mark_running("missing")


async def test_logs_are_capped_and_numbered(journal: RedisJournal) -> None:
    await journal.create(job("l1", 1.0))
    for i in range(5):
        await journal.append_log("l1", f"line {i}", "stderr" if i % 2 else "stdout")
    lines = await journal.logs("l1")
    assert [(line["seq"], line["line"]) for line in lines] == [
        (3, "line 2"),
        (4, "line 3"),
        (5, "line 4"),
    ]
    assert lines[1]["stream"] == "stderr"
    assert [line["seq"] for line in await journal.logs("l1", after=4)] == [5]


async def test_list_by_state_with_cursor_pages(journal: RedisJournal) -> None:
    for i in range(7):
        await journal.create(job(f"j{i}", 100.0 + i))
    await journal.mark_running("j3")
    await journal.mark_finished("j5", "succeeded", result=None)
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await journal.list_jobs(limit=3, cursor=cursor)
        seen += [r.id for r in page]
        if cursor is None:
            break
    assert seen == [f"j{i}" for i in reversed(range(7))]
    queued, _ = await journal.list_jobs(state="queued")
    assert [r.id for r in queued] == ["j6", "j4", "j2", "j1", "j0"]
    assert [r.id for r in (await journal.list_jobs(state="running"))[0]] == ["j3"]
    counts = await journal.counts()
    assert counts["queued"] == 5 and counts["running"] == 1 and counts["succeeded"] == 1


async def test_expired_jobs_leave_the_listing(journal: RedisJournal) -> None:
    await journal.create(job("e1", 1.0))
    await journal.create(job("e2", 2.0))
    await journal.mark_finished("e1", "failed", error={"message": "x"})
    await journal.client.delete([journal.keys.job("e1")])  # as its TTL would
    page, cursor = await journal.list_jobs()
    assert [r.id for r in page] == ["e2"] and cursor is None
    assert (await journal.counts())["failed"] == 1  # until the sweep
    assert await journal.sweep(now=10**10) == 1
    assert (await journal.counts())["failed"] == 0


async def test_a_tenants_listing_is_its_own_and_pages_are_full(journal: RedisJournal) -> None:
    for i in range(9):
        await journal.create(job(f"t{i}", 200.0 + i, tenant="acme" if i % 3 == 0 else "bravo"))
    await journal.mark_running("t3")
    pages: list[list[str]] = []
    cursor = None
    while True:
        page, cursor = await journal.list_jobs(limit=2, cursor=cursor, tenant="acme")
        pages.append([r.id for r in page])
        if cursor is None:
            break
    assert pages == [["t6", "t3"], ["t0"]]  # read from acme's index: no short pages
    queued, _ = await journal.list_jobs(state="queued", tenant="acme")
    assert [r.id for r in queued] == ["t6", "t0"]
    running, _ = await journal.list_jobs(state="running", tenant="bravo")
    assert running == []
    assert len((await journal.list_jobs(limit=100))[0]) == 9  # no tenant: every job
    assert (await journal.get("t3")).tenant == "acme"  # type: ignore[union-attr]


async def test_expired_jobs_leave_the_tenants_listing_too(journal: RedisJournal) -> None:
    await journal.create(job("x1", 1.0, tenant="acme"))
    await journal.mark_finished("x1", "succeeded", result=1)
    await journal.client.delete([journal.keys.job("x1")])  # as its TTL would
    assert await journal.sweep(now=10**10) == 1
    for state in ("all", "succeeded"):
        assert await journal.client.zcard(f"{journal.prefix}{{tix}}:acme:{state}") == 0


async def test_idempotency_keys_are_per_tenant(journal: RedisJournal) -> None:
    a, created_a = await journal.create(
        job("i1", 1.0, tenant="acme", fingerprint="f"), idempotency_key="key", fingerprint="f"
    )
    # The same key in another tenant, even with another body: a new job, no conflict.
    b, created_b = await journal.create(
        job("i2", 2.0, tenant="bravo", fingerprint="g"), idempotency_key="key", fingerprint="g"
    )
    assert created_a and created_b and b.id == "i2"
    again, created = await journal.create(
        job("i3", 3.0, tenant="bravo", fingerprint="g"), idempotency_key="key", fingerprint="g"
    )
    assert not created and again.id == "i2"
    with pytest.raises(Conflict):
        await journal.create(
            job("i4", 4.0, tenant="acme", fingerprint="g"), idempotency_key="key", fingerprint="g"
        )
    assert a.id == "i1"


async def test_concurrent_creates_and_transitions_share_script_calls(
    journal: RedisJournal,
) -> None:
    """Each coalesced call is answered as its own call would be: created, moved, refused
    (not in an allowed state) or not found, whichever batch it rode in."""
    ids = [f"c{n}" for n in range(12)]
    created: dict[str, bool] = {}

    async def create(job_id: str, n: int) -> None:
        created[job_id] = (await journal.create(job(job_id, 10.0 + n)))[1]

    async with trio.open_nursery() as nursery:
        for n, job_id in enumerate(ids):
            nursery.start_soon(create, job_id, n)
    assert created == dict.fromkeys(ids, True)
    assert journal._creates.batches < len(ids)
    await journal.mark_running("c0")  # a second start of c0 is refused below
    answers: dict[str, object] = {}

    async def start(job_id: str) -> None:
        try:
            answers[job_id] = await journal.mark_running(job_id)
        except NotFound as exc:
            answers[job_id] = exc

    before = journal._transitions.batches
    async with trio.open_nursery() as nursery:
        for job_id in [*ids, "missing"]:
            nursery.start_soon(start, job_id)
    assert journal._transitions.batches - before < len(ids)
    assert answers["c0"] is None
    assert isinstance(answers["missing"], NotFound)
    for job_id in ids[1:]:
        record = answers[job_id]
        assert isinstance(record, JobRecord) and record.id == job_id
        assert (record.state, record.attempts) == ("running", 1)
        assert await journal.get(job_id) == record
