"""The backend: where channels, jobs and the job queue live, built from ``[server] broker``.

One factory, :func:`open_backend`, and the one place that chooses (docs/architecture.md §6):

* ``memory://`` (the default): :class:`~perfgate.broker.MemoryHub`, the SQLite
  :class:`~perfgate.store.Journal` in ``[store] data_dir``, and the pool's own queue
  (:class:`~perfgate.jobs.queue.LocalQueue`): one instance.
* ``redis://HOST:PORT/N``: one coredis client shared by the :mod:`perfgate.redis` shells, the
  hub, the journal and the queue: several instances on one Redis. :mod:`perfgate.redis` is
  imported in that branch only, so the memory mode never loads coredis (nor anyio).

The queue runs jobs on the pool, which is built after the backend (the pool's events go to
the job service, which needs the journal): :meth:`Backend.attach_pool` completes it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from perfgate.broker import Hub, MemoryHub
from perfgate.config import Config
from perfgate.errors import ConfigError
from perfgate.jobs.queue import JobQueue, LocalQueue
from perfgate.logs import log_event
from perfgate.readiness import Readiness
from perfgate.store import JobJournal, Journal

if TYPE_CHECKING:
    from perfgate.pool import Pool

log = logging.getLogger("perfgate.supervisor")
T = TypeVar("T")
#: A long-running task started with ``nursery.start`` (``run(*, task_status)``).
Task = Callable[..., Awaitable[None]]
Stats = Callable[[], dict[str, Any]]


@attrs.define
class Backend:
    """The hub, the journal and (once :meth:`attach_pool` ran) the job queue of one mode."""

    #: ``"memory"`` or ``"redis"``.
    kind: str
    hub: Hub
    journal: JobJournal
    #: The hub's task: the connection supervisor (Redis) or the expired-history sweep (memory).
    hub_run: Task
    _make_queue: Callable[[Pool], tuple[JobQueue, Task | None, Stats | None]] = attrs.field(
        alias="make_queue"
    )
    #: Where accepted jobs go; ``None`` until :meth:`attach_pool`.
    queue: JobQueue | None = None
    #: The queue's claim loop (Redis); ``None`` when the pool's own queue runs jobs.
    queue_run: Task | None = None
    #: Statistics sources for the monitor, by name (the shared queue's, with Redis).
    sources: dict[str, Stats] = attrs.field(factory=dict)
    url: str = "memory://"

    def attach_pool(self, pool: Pool) -> JobQueue:
        """Build the job queue over this instance's ``pool`` and return it."""
        queue, run, stats = self._make_queue(pool)
        self.queue, self.queue_run = queue, run
        if stats is not None:
            self.sources["queue"] = stats
        return queue

    async def start_hub(self, nursery: trio.Nursery) -> None:
        """Start the hub's task; with Redis it returns once the first connection is up, so
        nothing is published before the hub is."""
        if self.kind == "redis":
            log_event(log, logging.INFO, "connecting to broker", url=self.url)
        await nursery.start(self.hub_run)

    async def start_queue(self, nursery: trio.Nursery) -> None:
        """Start the queue's claim loop, if it has one (after the job service)."""
        if self.queue_run is not None:
            await nursery.start(self.queue_run)


@contextlib.asynccontextmanager
async def open_backend(config: Config, readiness: Readiness) -> AsyncIterator[Backend]:
    """The backend ``config.server.broker`` names, open until the block exits. The data
    directory (``[store] data_dir``) must exist; the memory mode's journal lives there."""
    async with AsyncExitStack() as stack:
        if config.server.broker.startswith("redis://"):
            yield await _open_redis(config, readiness, stack)
        else:
            yield await _open_memory(config, stack)


async def _open_memory(config: Config, stack: AsyncExitStack) -> Backend:
    data_dir = Path(config.store.data_dir)
    hub = MemoryHub.from_config(config.gateway)
    journal = await enter_store(
        stack,
        data_dir,
        Journal.open(
            data_dir,
            max_log_lines=config.store.max_log_lines,
            result_ttl_s=config.store.result_ttl_s,
        ),
    )

    def make_queue(pool: Pool) -> tuple[JobQueue, Task | None, Stats | None]:
        return LocalQueue(pool), None, None

    return Backend(
        kind="memory",
        hub=hub,
        journal=journal,
        hub_run=hub.run,
        make_queue=make_queue,
        url=config.server.broker,
    )


async def _open_redis(config: Config, readiness: Readiness, stack: AsyncExitStack) -> Backend:
    # Imported here: coredis (and anyio) load only when Redis is configured.
    from perfgate.redis import RedisHub, RedisJobQueue, RedisJournal, open_redis

    gw = config.gateway
    client = await stack.enter_async_context(open_redis(config.server.broker))
    hub = RedisHub(
        client,
        history_size=gw.history_size,
        history_ttl_s=gw.history_ttl_s,
        history_bytes=gw.history_bytes,
        max_channels=gw.max_channels,
        readiness=readiness,
    )
    journal = await stack.enter_async_context(
        RedisJournal.open(
            client,
            max_log_lines=config.store.max_log_lines,
            result_ttl_s=config.store.result_ttl_s,
        )
    )

    def make_queue(pool: Pool) -> tuple[JobQueue, Task | None, Stats | None]:
        # Jobs are queued on Redis streams and claimed by whichever instance has room; this
        # instance's pool runs what it claims.
        queue = RedisJobQueue(
            client,
            pool=pool,
            journal=journal,
            readiness=readiness,
            lease_s=config.server.job_lease_s,
            capacity=2 * config.pool.max_workers,
            max_concurrency={
                name: task.max_concurrency
                for name, task in config.tasks.items()
                if task.max_concurrency is not None
            },
        )
        return queue, queue.run, queue.stats

    return Backend(
        kind="redis",
        hub=hub,
        journal=journal,
        hub_run=hub.run,
        make_queue=make_queue,
        url=config.server.broker,
    )


async def enter_store(
    stack: AsyncExitStack, data_dir: Path, store: AbstractAsyncContextManager[T]
) -> T:
    """Open a store in ``data_dir``; a failure to (a read-only or unusable directory, a
    journal file that is not a database) is a one-line configuration error naming the path."""
    try:
        return await stack.enter_async_context(store)
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"[store] data_dir {str(data_dir)!r}: {reason}") from None
