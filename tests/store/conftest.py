from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from perfgate.store import JobRecord, Journal, new_job_id

T0 = 1_700_000_000.0


class FakeClock:
    """Wall-clock stand-in: the tests move time by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def journal(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Journal]:
    async with Journal.open(
        tmp_path, max_log_lines=5, result_ttl_s=100.0, clock=clock, sweep=False
    ) as j:
        yield j


def make_job(clock: FakeClock, task: str = "echo", **args: object) -> JobRecord:
    """A new job created 'now', one millisecond after the previous one."""
    clock.advance(0.001)
    return JobRecord(id=new_job_id(clock.now), task=task, args=dict(args), created_at=clock.now)
