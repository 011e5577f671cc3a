"""``create_many``: several jobs in one commit, answered per job, in both journals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from perfgate.errors import Conflict
from perfgate.redis.client import open_redis
from perfgate.redis.journal import RedisJournal
from perfgate.store import SUCCEEDED, JobRecord, Journal, new_job_id


def _job(n: int, **fields: Any) -> JobRecord:
    return JobRecord(id=new_job_id(), task="echo", args={"n": n}, created_at=1000.0 + n, **fields)


@pytest.fixture(params=["sqlite", "redis"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "sqlite":
        async with Journal.open(tmp_path, max_log_lines=5, result_ttl_s=100, sweep=False) as j:
            yield j
    else:
        url = request.getfixturevalue("redis_url")
        async with open_redis(url) as client:
            yield RedisJournal(client, max_log_lines=5, result_ttl_s=100)


async def test_one_conflict_fails_alone(journal: Any) -> None:
    earlier, _ = await journal.create(_job(0), idempotency_key="k", fingerprint="a")
    jobs = [
        (_job(1), None, None),
        (_job(2), "k", "other body"),  # the key is taken by another body: 409
        (_job(3), "k", "a"),  # the same body: the earlier job
        (_job(4), "new", "b"),
        (_job(5), "new", "b"),  # a key used twice in one batch: two submits in order
        (attrs.evolve(_job(6), state=SUCCEEDED, result=6), None, None),
    ]
    answers = await journal.create_many(jobs)
    assert isinstance(answers[1], Conflict)
    created = [a[1] if isinstance(a, tuple) else None for a in answers]
    assert created == [True, None, False, True, False, True]
    assert answers[2][0].id == earlier.id
    assert answers[4][0].id == jobs[3][0].id
    for index in (0, 3, 5):
        stored = await journal.get(jobs[index][0].id)
        assert stored is not None and stored.args == {"n": index + 1}
    assert await journal.get(jobs[1][0].id) is None
    assert await journal.get(jobs[4][0].id) is None
    assert await journal.create_many([]) == []


async def test_sqlite_batch_is_one_transaction(tmp_path: Path) -> None:
    async with Journal.open(tmp_path, max_log_lines=5, result_ttl_s=100, sweep=False) as journal:
        before = journal.stats().batches
        answers = await journal.create_many([(_job(n), None, None) for n in range(50)])
        assert all(isinstance(a, tuple) and a[1] for a in answers)
        assert journal.stats().batches == before + 1


async def test_redis_batch_enqueues_the_queued_jobs(redis_url: str) -> None:
    async with open_redis(redis_url) as client:
        journal = RedisJournal(client, max_log_lines=5, result_ttl_s=100)
        done = attrs.evolve(_job(9), state=SUCCEEDED, result=1)
        high = attrs.evolve(_job(8), priority="high")
        await journal.create_many([(_job(1), None, None), (high, None, None), (done, None, None)])
        assert await client.xlen(journal.keys.stream("normal")) == 1
        assert await client.xlen(journal.keys.stream("high")) == 1
