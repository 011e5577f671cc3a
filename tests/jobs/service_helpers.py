"""A job service in a test: over no pool (events fed by hand) or over a real pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from perfgate.config import Config
from perfgate.jobs import JobService
from perfgate.jobs.events import PoolEvents, Publish
from perfgate.pool import Pool
from perfgate.readiness import Phase, Readiness


async def _quiet(channel: str, data: Any) -> int:
    return 0


def make_service(
    config: Config,
    pool: Any,
    journal: Any,
    publish: Publish | None = None,
    events: PoolEvents | None = None,
) -> JobService:
    """A service that accepts work; ``pool`` may be ``None`` for tests that feed events."""
    readiness = Readiness()
    readiness.advance(Phase.READY)
    return JobService(
        config=config,
        pool=pool,
        journal=journal,
        publish=publish or _quiet,
        readiness=readiness,
        events=events,
    )


@asynccontextmanager
async def service_over_pool(
    config: Config, journal: Any, publish: Publish | None = None
) -> AsyncIterator[JobService]:
    """A service over a running pool, wired as the supervisor wires them (the events channel
    first, handed to both)."""
    events = PoolEvents()
    async with Pool(config.pool, config.tasks, on_event=events.put) as pool:
        yield make_service(config, pool, journal, publish, events)
