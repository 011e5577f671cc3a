"""The root of the task tree: one nursery that starts every component and owns shutdown.

``Supervisor.run`` is the whole service. Each component is started with ``nursery.start`` so
that the supervisor knows when it is ready and what it bound; only when all are ready does
readiness go green and the ready file appear.

Shutdown (SIGTERM/SIGINT, or :meth:`Supervisor.request_stop`):

1. readiness goes 503 (``/readyz``; new submits are refused);
2. in parallel, under one ``drain_timeout_s`` deadline: the HTTP listener closes and in-flight
   requests finish, the gateway closes WebSocket connections with 1001 in batches spread over
   the window, and the pool finishes running jobs;
3. the root cancel scope is cancelled: whatever is left is torn down by cancellation, and every
   component's ``finally`` reaps what it owns (children, sockets, files).

A second signal skips the drain and cancels at once; so does the first one while the service
is still starting (it has accepted nothing yet).
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from perfgate.auth import Authenticator
from perfgate.broker import Hub, MemoryHub
from perfgate.cache import ResultCache
from perfgate.config import Config
from perfgate.errors import ConfigError
from perfgate.gateway import Gateway
from perfgate.http.app import AppState, create_app
from perfgate.http.server import serve_http
from perfgate.jobs import JobService
from perfgate.jobs.lifecycle import PoolEvent
from perfgate.logs import log_event
from perfgate.monitor import Monitor
from perfgate.pool import Pool
from perfgate.readiness import Phase, Readiness
from perfgate.store import JobJournal, Journal

if TYPE_CHECKING:
    import coredis

log = logging.getLogger("perfgate.supervisor")
#: One WebSocket write in this many feeds the delivery-delay histogram.
DELIVERY_SAMPLE_EVERY = 32


@attrs.frozen
class Bound:
    """What the service bound, once ready: the URLs clients use."""

    http: str
    ws: str
    pid: int

    def to_json(self) -> dict[str, Any]:
        return {"http": self.http, "ws": self.ws, "pid": self.pid}


@attrs.define
class _Parts:
    monitor: Monitor
    gateway: Gateway
    jobs: JobService
    broker: Callable[..., Awaitable[None]] | None = None
    """The broker's connection supervisor (``run(*, task_status)``), if it has one."""
    queue: Callable[..., Awaitable[None]] | None = None
    """The shared job queue's claim loop (``run(*, task_status)``), with a Redis broker."""


@attrs.define
class _EventRelay:
    """The pool is built before the job service that consumes its events: relay until then."""

    target: Callable[[str, PoolEvent], None] | None = None

    def relay(self, job_id: str, event: PoolEvent) -> None:
        if self.target is not None:
            self.target(job_id, event)


@attrs.define
class Supervisor:
    config: Config
    ready_file: Path | None = None
    handle_signals: bool = True
    readiness: Readiness = attrs.field(factory=Readiness)
    bound: Bound | None = None
    _stop: trio.Event = attrs.field(factory=trio.Event)
    _http_stop: trio.Event = attrs.field(factory=trio.Event)
    _drainers: list[Callable[[float], Awaitable[None]]] = attrs.field(factory=list)

    def request_stop(self) -> None:
        """Begin a graceful stop (what SIGTERM does). Safe to call more than once."""
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the service until a stop is requested, then drain and return.

        Cancelling this call tears everything down at once (no drain); either way, when it
        returns or raises, no task, process, socket or file of the service is left.
        """
        config = self.config
        authenticator = Authenticator(config.auth.tokens)
        state = AppState(config=config, readiness=self.readiness, authenticator=authenticator)
        try:
            async with trio.open_nursery() as root:
                if self.handle_signals:
                    await root.start(self._watch_signals, root.cancel_scope)
                # Resources first (entered in order, closed in reverse), then the tasks that
                # use them in an inner nursery: every task is gone before its resource closes.
                async with AsyncExitStack() as resources:
                    parts = await self._open_resources(resources, state)
                    async with trio.open_nursery() as tasks:
                        bound = await self._start_tasks(tasks, parts, state)
                        self.readiness.advance(Phase.READY)
                        self._write_ready_file(bound)
                        log_event(log, logging.INFO, "ready", **bound.to_json())
                        task_status.started(bound)
                        await self._stop.wait()
                        await self._drain(config.pool.drain_timeout_s)
                        tasks.cancel_scope.cancel()
                root.cancel_scope.cancel()
        finally:
            self.readiness.advance(Phase.STOPPED)
            self._remove_ready_file()
        log_event(log, logging.INFO, "stopped")

    async def _open_resources(self, stack: AsyncExitStack, state: AppState) -> _Parts:
        """The journal, the result cache and the pool (async context managers, closed in
        reverse order by ``stack``), and the components built on them."""
        config = self.config
        data_dir = Path(config.store.data_dir)
        try:
            await trio.Path(data_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"[store] data_dir {str(data_dir)!r}: {exc.strerror}") from None
        monitor = Monitor(config.monitor)
        hub, broker, redis = await self._open_broker(stack)

        deliveries = 0

        def delivered(published_at: float) -> None:
            # A sample of the publish-to-socket delay: at 1,000 subscribers a publish makes
            # 1,000 writes, and observing each would cost more than the writes themselves.
            nonlocal deliveries
            deliveries += 1
            if deliveries % DELIVERY_SAMPLE_EVERY == 0:
                monitor.observe_ws_delivery(max(0.0, hub.clock() - published_at))

        journal: JobJournal
        if redis is None:
            journal = await stack.enter_async_context(
                Journal.open(
                    data_dir,
                    max_log_lines=config.store.max_log_lines,
                    result_ttl_s=config.store.result_ttl_s,
                )
            )
        else:
            from perfgate.store.redis_journal import RedisJournal

            journal = redis_journal = await stack.enter_async_context(
                RedisJournal.open(
                    redis,
                    max_log_lines=config.store.max_log_lines,
                    result_ttl_s=config.store.result_ttl_s,
                )
            )

        async def job_tenant(job_id: str) -> str | None:
            record = await journal.get(job_id)
            return None if record is None else record.tenant

        gateway = Gateway(
            config.gateway,
            hub,
            state.authenticator,
            on_rtt=monitor.observe_heartbeat_rtt,
            on_delivery=delivered,
            job_tenant=job_tenant,
            trusted_proxies=config.http.trusted_proxies,
        )
        cache = await stack.enter_async_context(ResultCache(config.cache, data_dir))
        relay = _EventRelay()
        pool = await stack.enter_async_context(
            Pool(
                config.pool,
                config.tasks,
                max_log_lines=config.store.max_log_lines,
                on_event=relay.relay,
            )
        )

        def job_finished(task: str, outcome: str, run_s: float | None) -> None:
            monitor.observe_job(task, outcome, run_s or 0.0)

        queue = None
        if redis is not None:
            # With Redis, jobs are queued on its streams and claimed by whichever instance
            # has room; this instance's pool runs what it claims.
            from perfgate.jobs.redis_queue import RedisJobQueue

            queue = RedisJobQueue(
                redis,
                pool=pool,
                journal=redis_journal,
                readiness=self.readiness,
                lease_s=config.server.job_lease_s,
                capacity=2 * config.pool.max_workers,
            )
            monitor.add_source("queue", queue.stats)
        jobs = JobService(
            config=config,
            pool=pool,
            journal=journal,
            publish=gateway.publish,
            readiness=self.readiness,
            cache=cache,
            on_finished=job_finished,
            queue=queue,
        )
        relay.target = jobs.on_pool_event
        monitor.add_source("pool", pool.stats)
        monitor.add_source("gateway", gateway.stats)
        monitor.add_source("cache", cache.stats)
        monitor.add_source("jobs", jobs.stats)
        state.components.update(
            monitor=monitor,
            hub=hub,
            gateway=gateway,
            journal=journal,
            cache=cache,
            pool=pool,
            jobs=jobs,
        )
        return _Parts(
            monitor=monitor,
            gateway=gateway,
            jobs=jobs,
            broker=broker,
            queue=None if queue is None else queue.run,
        )

    async def _open_broker(
        self, stack: AsyncExitStack
    ) -> tuple[Hub, Callable[..., Awaitable[None]] | None, coredis.Redis[str] | None]:
        """The hub for ``[server] broker``, its supervisor task if it has one, and the Redis
        client (``None`` in memory mode: jobs then live in the SQLite journal)."""
        config = self.config
        url = config.server.broker
        gw = config.gateway
        if not url.startswith("redis://"):
            memory_hub = MemoryHub.from_config(gw)
            return memory_hub, memory_hub.run, None
        # Imported here: coredis (and anyio) load only when Redis is configured.
        from perfgate.broker.redis import RedisHub, open_redis

        client = await stack.enter_async_context(open_redis(url))
        redis_hub = RedisHub(
            client,
            history_size=gw.history_size,
            history_ttl_s=gw.history_ttl_s,
            history_bytes=gw.history_bytes,
            max_channels=gw.max_channels,
            readiness=self.readiness,
        )
        return redis_hub, redis_hub.run, client

    async def _start_tasks(self, nursery: trio.Nursery, parts: _Parts, state: AppState) -> Bound:
        """Start every long-running task; each reports readiness through ``nursery.start``."""
        if parts.broker is not None:
            # Redis: waits for the first connection, so nothing is published before the hub
            # is up. Memory: the sweep of expired channel histories.
            if self.config.server.broker.startswith("redis://"):
                log_event(log, logging.INFO, "connecting to broker", url=self.config.server.broker)
            await nursery.start(parts.broker)
        # Recovery first: jobs owed from an earlier run are queued before we say "ready".
        await nursery.start(parts.jobs.run)
        if parts.queue is not None:
            await nursery.start(parts.queue)
        with _bind_errors("gateway", self.config.gateway.bind):
            ws_url = await nursery.start(parts.gateway.run)
        state.components["ws_url"] = ws_url
        await nursery.start(parts.monitor.run, parts.gateway.publish)
        app = create_app(state)
        with _bind_errors("http", self.config.http.bind):
            http_url = await nursery.start(_serve_http_task, app, self.config, self._http_stop.wait)
        self._drainers = [parts.gateway.drain, parts.jobs.drain]
        self.bound = Bound(http=http_url, ws=ws_url, pid=os.getpid())
        return self.bound

    async def _drain(self, timeout_s: float) -> None:
        self.readiness.advance(Phase.DRAINING)
        log_event(log, logging.INFO, "draining", timeout_s=timeout_s)
        with trio.move_on_after(timeout_s) as scope:
            async with trio.open_nursery() as nursery:
                self._http_stop.set()
                for drain in self._drainers:
                    nursery.start_soon(drain, timeout_s)
        if scope.cancelled_caught:
            log_event(
                log, logging.WARNING, "drain deadline passed; cancelling", timeout_s=timeout_s
            )

    async def _watch_signals(
        self,
        root_scope: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                name = signal.Signals(signum).name
                if self.readiness.phase is Phase.STARTING:
                    # Nothing accepted yet, so nothing to drain: a start-up that waits (for a
                    # broker that is down, say) must not make the operator wait with it.
                    log_event(log, logging.INFO, "stop requested while starting", signal=name)
                    self._stop.set()
                    root_scope.cancel()
                elif not self._stop.is_set():
                    log_event(log, logging.INFO, "stop requested", signal=name)
                    self._stop.set()
                else:
                    log_event(log, logging.WARNING, "second signal: stopping now", signal=name)
                    root_scope.cancel()

    def _write_ready_file(self, bound: Bound) -> None:
        if self.ready_file is None:
            return
        # Write then rename, so that a reader never sees a half-written file.
        tmp = self.ready_file.with_name(self.ready_file.name + ".tmp")
        tmp.write_text(json.dumps(bound.to_json()))
        tmp.replace(self.ready_file)

    def _remove_ready_file(self) -> None:
        if self.ready_file is not None:
            self.ready_file.unlink(missing_ok=True)


@contextmanager
def _bind_errors(section: str, bind: str) -> Iterator[None]:
    """Turn a failed bind into a one-line configuration error naming the address."""
    try:
        yield
    except* OSError as group:
        reason: BaseException = group
        while isinstance(reason, BaseExceptionGroup):
            reason = reason.exceptions[0]
        text = getattr(reason, "strerror", None) or str(reason)
        raise ConfigError(f"[{section}] bind {bind}: {text}") from None


async def _serve_http_task(
    app: Any,
    config: Config,
    shutdown_trigger: Callable[[], Awaitable[None]],
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    await serve_http(
        app,
        config.http,
        shutdown_trigger=shutdown_trigger,
        graceful_timeout_s=config.pool.drain_timeout_s,
        task_status=task_status,
    )
