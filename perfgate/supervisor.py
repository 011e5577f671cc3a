"""The root of the task tree: one nursery that starts every component and owns shutdown.

``Supervisor.run`` is the whole service. Each component is started with ``nursery.start`` so
that the supervisor knows when it is ready and what it bound; only when all are ready does
readiness go green and the ready file appear.

Shutdown (SIGTERM/SIGINT, or :meth:`Supervisor.request_stop`):

1. readiness goes 503 (``/readyz``; submits and publishes get 503 with ``Retry-After``); the
   HTTP listener stays open, reads and long-polls are served, and every response says
   ``Connection: close``;
2. in parallel, under one ``drain_timeout_s`` deadline: the gateway closes WebSocket
   connections with 1001 in batches spread over the window, and the pool finishes running
   jobs, whose last events the job service then commits to the journal;
3. the HTTP listener closes and requests in flight finish (``HTTP_CLOSE_TIMEOUT_S``);
4. the tasks are cancelled: whatever is left is torn down by cancellation, and every
   component's ``finally`` reaps what it owns (children, sockets, files). Events the pool
   reports as it closes are applied before the journal closes: a job still running at the
   deadline stays unfinished in the journal, and the next start runs it again.

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
from typing import Any

import attrs
import trio

from perfgate import notify
from perfgate.auth import Authenticator
from perfgate.backend import Backend, enter_store, open_backend
from perfgate.cache import ResultCache
from perfgate.config import Config
from perfgate.errors import ConfigError, PerfgateError
from perfgate.gateway import Gateway
from perfgate.http.app import AppState, create_app
from perfgate.http.server import serve_http
from perfgate.jobs import JobService
from perfgate.jobs.events import PoolEvents
from perfgate.jobs.scheduler import Scheduler, check_schedules
from perfgate.logs import log_event
from perfgate.monitor import Monitor
from perfgate.pool import Pool
from perfgate.readiness import Phase, Readiness
from perfgate.store.lock import hold_data_dir

log = logging.getLogger("perfgate.supervisor")
#: One WebSocket write in this many feeds the delivery-delay histogram.
DELIVERY_SAMPLE_EVERY = 32
#: After the drain: how long requests still in flight get once the HTTP listener closed (every
#: long-poll has answered by then, and new requests during the drain are answered at once).
HTTP_CLOSE_TIMEOUT_S = 5.0
#: How long, after the pool closed, applying its last events may take.
SETTLE_TIMEOUT_S = 5.0


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
    backend: Backend
    """The hub, the journal and the queue, and their tasks (:mod:`perfgate.backend`)."""
    scheduler: Scheduler | None = None
    """Submits ``[schedules]`` jobs when due, if any are configured."""


@attrs.define
class Supervisor:
    config: Config
    ready_file: Path | None = None
    handle_signals: bool = True
    readiness: Readiness = attrs.field(factory=Readiness)
    bound: Bound | None = None
    _stop: trio.Event = attrs.field(factory=trio.Event)
    _http_stop: trio.Event = attrs.field(factory=trio.Event)
    _http_closed: trio.Event = attrs.field(factory=trio.Event)
    _drainers: list[Callable[[float], Awaitable[None]]] = attrs.field(factory=list)
    #: systemd's sd_notify (perfgate.notify.Notifier): READY=1, then STOPPING=1.
    notify: Callable[[str], None] = lambda _message: None
    #: Called once, when the service is ready (``perfgate serve`` freezes start-up's
    #: objects out of the garbage collector's reach there: :mod:`perfgate.gcpolicy`).
    on_ready: Callable[[], object] = lambda: None
    _ready_file_ours: bool = False

    def request_stop(self) -> None:
        """Begin a graceful stop (what SIGTERM does). Safe to call more than once."""
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the service until a stop is requested, then drain and return.

        Cancelling this call tears everything down at once (no drain); either way, when it
        returns or raises, no task, process, socket or file of the service is left.
        """
        config = self.config
        check_schedules(config)  # a schedule that cannot run is an error now, not at 3 a.m.
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
                        self.on_ready()
                        self._write_ready_file(bound)
                        self.notify(notify.READY)
                        log_event(log, logging.INFO, "ready", **bound.to_json())
                        task_status.started(bound)
                        await self._stop.wait()
                        self.notify(notify.STOPPING)
                        await self._drain(config.pool.drain_timeout_s)
                        tasks.cancel_scope.cancel()
                root.cancel_scope.cancel()
        finally:
            self.readiness.advance(Phase.STOPPED)
            self._remove_ready_file()
        log_event(log, logging.INFO, "stopped")

    async def _open_resources(self, stack: AsyncExitStack, state: AppState) -> _Parts:
        """The backend (hub and journal, :mod:`perfgate.backend`), the result cache and the
        pool (async context managers, closed in reverse order by ``stack``), and the
        components built on them."""
        config = self.config
        data_dir = Path(config.store.data_dir)
        try:
            await trio.Path(data_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"[store] data_dir {str(data_dir)!r}: {exc.strerror}") from None
        stack.enter_context(hold_data_dir(data_dir))
        # Only now is the ready file ours to write and remove: a server refused the data
        # directory must not remove the live holder's. One left by a server that was killed
        # names a dead process: remove it before a slow start.
        self._ready_file_ours = True
        self._remove_ready_file()
        monitor = Monitor(config.monitor)
        backend = await stack.enter_async_context(open_backend(config, self.readiness))
        hub, journal = backend.hub, backend.journal

        deliveries = 0

        def delivered(published_at: float) -> None:
            # A sample of the publish-to-socket delay: at 1,000 subscribers a publish makes
            # 1,000 writes, and observing each would cost more than the writes themselves.
            nonlocal deliveries
            deliveries += 1
            if deliveries % DELIVERY_SAMPLE_EVERY == 0:
                monitor.observe_ws_delivery(max(0.0, hub.clock() - published_at))

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
        cache = await enter_store(stack, data_dir, ResultCache(config.cache, data_dir))

        def job_finished(task: str, outcome: str, run_s: float | None) -> None:
            monitor.observe_job(task, outcome, run_s or 0.0)

        # The pool's events channel first, handed to both the pool and the job service; the
        # job service is built before the pool starts, so its settle can be stacked to run
        # after the pool closes (no event can follow) and before the cache and journal close.
        events = PoolEvents()
        pool = Pool(
            config.pool,
            config.tasks,
            max_log_lines=config.store.max_log_lines,
            on_event=events.put,
        )
        queue = backend.attach_pool(pool)
        for name, stats in backend.sources.items():
            monitor.add_source(name, stats)
        jobs = JobService(
            config=config,
            pool=pool,
            journal=journal,
            publish=gateway.publish,
            readiness=self.readiness,
            events=events,
            cache=cache,
            on_finished=job_finished,
            queue=queue,
            hub=hub,
        )
        stack.push_async_callback(_settle_last_events, jobs)
        await stack.enter_async_context(pool)
        scheduler = Scheduler(config.schedules, jobs) if config.schedules else None
        if scheduler is not None:
            monitor.add_source("scheduler", scheduler.stats)
        gateway.jobs = jobs  # WebSocket submits (the gateway sees only JobSubmitter.submit)
        monitor.add_source("pool", pool.stats)
        monitor.add_source("gateway", gateway.stats)
        monitor.add_source("cache", cache.stats)
        monitor.add_source("jobs", jobs.stats)
        monitor.add_source("journal", journal.stats)
        services = state.services
        services.monitor, services.hub, services.gateway = monitor, hub, gateway
        services.journal, services.cache, services.pool, services.jobs = journal, cache, pool, jobs
        return _Parts(
            monitor=monitor, gateway=gateway, jobs=jobs, backend=backend, scheduler=scheduler
        )

    async def _start_tasks(self, nursery: trio.Nursery, parts: _Parts, state: AppState) -> Bound:
        """Start every long-running task; each reports readiness through ``nursery.start``."""
        # Redis: waits for the first connection, so nothing is published before the hub is
        # up. Memory: the sweep of expired channel histories.
        await parts.backend.start_hub(nursery)
        # Recovery first: jobs owed from an earlier run are queued before we say "ready".
        await nursery.start(parts.jobs.run)
        await parts.backend.start_queue(nursery)
        if parts.scheduler is not None:
            await nursery.start(parts.scheduler.run)
        with _bind_errors("gateway", self.config.gateway.bind):
            ws_url = await nursery.start(parts.gateway.run)
        state.services.ws_url = ws_url
        await nursery.start(parts.monitor.run, parts.gateway.publish)
        app = create_app(state)
        with _bind_errors("http", self.config.http.bind):
            http_url = await nursery.start(self._serve_http, app)
        streams = state.services.event_streams
        assert streams is not None  # create_app made them
        self._drainers = [parts.gateway.drain, parts.jobs.drain, streams.drain]
        self.bound = Bound(http=http_url, ws=ws_url, pid=os.getpid())
        return self.bound

    async def _drain(self, timeout_s: float) -> None:
        """Drain every component under one deadline, then close the HTTP listener.

        The listener stays open for the whole drain: new connections are told (503 with
        ``Retry-After`` for work, ``Connection: close`` on every response) rather than
        refused, which behind a proxy would be an HTML 502.
        """
        self.readiness.advance(Phase.DRAINING)
        log_event(log, logging.INFO, "draining", timeout_s=timeout_s)
        with trio.move_on_after(timeout_s) as scope:
            async with trio.open_nursery() as nursery:
                for drain in self._drainers:
                    nursery.start_soon(drain, timeout_s)
        if scope.cancelled_caught:
            log_event(
                log, logging.WARNING, "drain deadline passed; cancelling", timeout_s=timeout_s
            )
        self._http_stop.set()
        with trio.move_on_after(HTTP_CLOSE_TIMEOUT_S):
            await self._http_closed.wait()

    async def _serve_http(
        self, app: Any, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve HTTP until the end of the drain (see :meth:`_drain`)."""
        try:
            await serve_http(
                app,
                self.config.http,
                shutdown_trigger=self._http_stop.wait,
                graceful_timeout_s=HTTP_CLOSE_TIMEOUT_S,
                closing=lambda: self.readiness.stopping,
                task_status=task_status,
            )
        finally:
            self._http_closed.set()

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
        if self.ready_file is not None and self._ready_file_ours:
            self.ready_file.unlink(missing_ok=True)


async def _settle_last_events(jobs: JobService) -> None:
    """Once the pool has closed (no event can follow), apply what it reported last (jobs that
    finished after the drain) before the journal closes. Shielded, with its own deadline: it
    runs on the way out of a cancellation too."""
    with trio.CancelScope(shield=True) as scope:
        scope.deadline = trio.current_time() + SETTLE_TIMEOUT_S
        try:
            await jobs.settle()
        except PerfgateError as exc:  # e.g. the journal unreachable: recovery re-runs
            log_event(log, logging.WARNING, "could not settle job events", error=str(exc))
    if scope.cancelled_caught:
        log_event(log, logging.WARNING, "settling job events timed out")


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
