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

A second signal skips the drain and cancels at once.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

from perfgate.auth import Authenticator
from perfgate.config import Config
from perfgate.http.app import AppState, create_app
from perfgate.http.server import serve_http
from perfgate.logs import log_event
from perfgate.readiness import Phase, Readiness

log = logging.getLogger("perfgate.supervisor")


@attrs.frozen
class Bound:
    """What the service bound, once ready: the URLs clients use."""

    http: str
    ws: str
    pid: int

    def to_json(self) -> dict[str, Any]:
        return {"http": self.http, "ws": self.ws, "pid": self.pid}


class Drainable(Protocol):
    async def drain(self, timeout_s: float) -> None: ...


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
            async with trio.open_nursery() as root, AsyncExitStack() as stack:
                if self.handle_signals:
                    await root.start(self._watch_signals, root.cancel_scope)
                await self._start_components(root, stack, state)
                app = create_app(state)
                http_url = await root.start(
                    _serve_http_task,
                    app,
                    config,
                    self._http_stop.wait,
                )
                ws_url = state.components.get("ws_url", "")
                self.bound = Bound(http=http_url, ws=ws_url, pid=os.getpid())
                self.readiness.advance(Phase.READY)
                self._write_ready_file(self.bound)
                log_event(log, logging.INFO, "ready", http=http_url, ws=ws_url, pid=os.getpid())
                task_status.started(self.bound)

                await self._stop.wait()
                await self._drain(config.pool.drain_timeout_s)
                root.cancel_scope.cancel()
        finally:
            self.readiness.advance(Phase.STOPPED)
            self._remove_ready_file()
        log_event(log, logging.INFO, "stopped")

    async def _start_components(
        self, root: trio.Nursery, stack: AsyncExitStack, state: AppState
    ) -> None:
        """Start the gateway, pool, store and monitor; each records itself in ``state``.

        Components that need ``async with`` enter ``stack`` (so they are closed, in reverse
        order, before the root nursery finishes); long-running tasks go in ``root``.
        """
        del root, stack, state  # filled by the component issues

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
                if not self._stop.is_set():
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
