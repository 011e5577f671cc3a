"""The WebSocket gateway: handshake admission, one :class:`Connection` per client, drain.

``Gateway.run`` owns one nursery holding the accept loops and every connection's tasks:
its handler task (:meth:`Gateway._serve_stream`: the handshake, then
:meth:`Connection.run`, which reads), trio-websocket's reader task, and, only while they have
work, its writer and heartbeat probe. A connection has no nursery of its own: at 10,000 idle
connections a nursery per connection was 1.4 KiB each (a Nursery, its cancel scope and
status, their sets), and ``trio.serve_listeners`` added a wrapper coroutine and a task name
string per connection (issue 16.2; figures in docs/architecture.md). So failures are
contained by hand instead: the handler catches what the handshake or ``run`` raises, and
every other task of a connection starts through :class:`ConnectionTasks`, which catches what
it raises. None of it reaches the shared nursery. How a connection's tasks end without a
nursery to cancel: see :meth:`Connection.run`.
"""

from __future__ import annotations

import errno
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import trio
from trio_websocket import WebSocketRequest, wrap_server_stream

from perfgate.auth import Authenticator, Principal, bearer_token
from perfgate.broker import PRIORITIES, Hub
from perfgate.config import GatewayConfig, parse_address
from perfgate.errors import (
    Forbidden,
    NotFound,
    PerfgateError,
    Unavailable,
    ValidationError,
    retry_after_header,
)
from perfgate.forwarded import parse_networks, resolve_client
from perfgate.gateway import channels
from perfgate.gateway._wire import GatewayStream
from perfgate.gateway.accept import AcceptPace
from perfgate.gateway.connection import Connection
from perfgate.gateway.heartbeat import HeartbeatTiming
from perfgate.gateway.jobs import JobSubmitter
from perfgate.gateway.limits import drain_schedule
from perfgate.gateway.outbox import BatchPlan, FrameCache
from perfgate.gateway.pulse import Pulse
from perfgate.gateway.stats import CloseInfo, GatewayStats
from perfgate.gateway.tasks import ConnectionTasks

log = logging.getLogger("perfgate.gateway")

WS_PATH = "/ws"
HANDSHAKE_TIMEOUT_S = 10.0
INBOUND_QUEUE_MESSAGES = 4
"""trio-websocket's inbound queue; the reader handles one frame at a time anyway."""
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
"""``accept()`` failures that mean "out of file descriptors or memory": wait, then retry."""
ACCEPT_RETRY_S = 0.1


class Gateway:
    """The WebSocket server (the protocol: docs/architecture.md §4).

    Start it with ``url = await nursery.start(gateway.run)``; stop it gracefully with
    ``await gateway.drain(timeout_s)`` (then ``run`` returns), or by cancelling ``run``
    (sockets closed at once, no close handshake).

    ``on_rtt(seconds)`` gets each heartbeat round trip; ``on_delivery(published_at)`` gets, per
    frame written, the hub timestamp of its oldest message (measure it with ``hub.clock``).
    ``job_tenant(job_id)`` names the tenant owning a job (``None``: no such job), which decides
    who may subscribe to ``jobs:{id}`` (see :func:`channels.check_job_channel`).
    ``trusted_proxies`` (``[http] trusted_proxies``, CIDRs): handshakes from these peers name
    the real client in ``X-Forwarded-For`` / ``Forwarded`` (see :mod:`perfgate.forwarded`).
    """

    def __init__(
        self,
        config: GatewayConfig,
        hub: Hub,
        authenticator: Authenticator,
        *,
        on_close: Callable[[CloseInfo], None] | None = None,
        on_rtt: Callable[[float], None] | None = None,
        on_delivery: Callable[[float], None] | None = None,
        job_tenant: channels.JobTenant | None = None,
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        self.config = config
        self._trusted = parse_networks(trusted_proxies)
        self._pulse = Pulse()
        self._pace = AcceptPace(config.accept_rate_per_s, config.accept_burst)
        # Shared by every connection: one object each, not one per connection.
        self._plan = BatchPlan(config.batch_window_ms / 1000, config.batch_max)
        self._timing = HeartbeatTiming(
            config.heartbeat_min_s, config.heartbeat_max_s, config.pong_timeout_s
        )
        self._job_tenant = job_tenant
        self.hub = hub
        self.authenticator = authenticator
        self._on_close = on_close
        self._on_rtt = on_rtt
        self._on_delivery = on_delivery
        self._stats = GatewayStats()
        self._frames = FrameCache()
        self._connections: dict[Connection, None] = {}
        self._draining = False
        self._listen_scope = trio.CancelScope()
        self._tasks: ConnectionTasks | None = None  # set by run()
        self._idle = trio.Event()
        self._idle.set()
        self.url: str | None = None
        #: Where ``submit`` frames go; the supervisor sets it once the job service exists
        #: (it is built after the gateway, whose ``publish`` it needs). ``None``: a submit is
        #: answered ``unavailable``.
        self.jobs: JobSubmitter | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind ``config.bind`` (port 0: any free port), report ``ws://host:port`` through
        ``task_status.started``, and serve until drained or cancelled."""
        host, port = parse_address(self.config.bind)
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound_port = listeners[0].socket.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"ws://{shown}:{bound_port}"
        async with trio.open_nursery() as timers:
            # The one timer task of every connection; it outlives them, and only them.
            await timers.start(self._pulse.run)
            async with trio.open_nursery() as nursery:
                self._tasks = ConnectionTasks(nursery, self._stats)
                await nursery.start(self._listen, listeners, nursery)
                task_status.started(self.url)
                log.info("gateway listening on %s%s", self.url, WS_PATH)
            timers.cancel_scope.cancel()

    async def _listen(
        self,
        listeners: list[trio.SocketListener],
        handler_nursery: trio.Nursery,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with self._listen_scope:
            async with trio.open_nursery() as accepting:
                for listener in listeners:
                    accepting.start_soon(self._accept, listener, handler_nursery)
                task_status.started(listeners)

    async def _accept(self, listener: trio.SocketListener, handler_nursery: trio.Nursery) -> None:
        """Accept connections until cancelled; each one's handler task goes straight into
        ``handler_nursery`` (no wrapper coroutine, a constant task name)."""
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in ACCEPT_CAPACITY_ERRNOS:
                        raise
                    log.error("gateway: accept() failed (%s); retrying", exc)
                    await trio.sleep(ACCEPT_RETRY_S)
                    continue
                handler_nursery.start_soon(self._serve_stream, stream, name="gateway.connection")

    async def drain(self, timeout_s: float) -> None:
        """Stop accepting, then close every connection with 1001 in batches spread over
        ``timeout_s`` (each flushes its queue first), and wait for them, at most
        ``timeout_s`` in all. Connections still open after that are left to cancellation."""
        self._draining = True
        self._listen_scope.cancel()
        start = trio.current_time()
        conns = list(self._connections)
        index = 0
        for offset_s, count in drain_schedule(len(conns), timeout_s):
            await trio.sleep_until(start + offset_s)
            for conn in conns[index : index + count]:
                conn.request_close("server shutting down", flush=True)
            index += count
        for conn in list(self._connections):  # any that slipped in during the handshake
            conn.request_close("server shutting down", flush=True)
        with trio.move_on_at(start + timeout_s):
            await self._idle.wait()

    # -- server-side publish (the HTTP route calls this) --------------------------------------

    async def publish(
        self,
        channel: str,
        data: Any,
        *,
        priority: str = "normal",
        principal: Principal | None = None,
    ) -> int:
        """Validate and publish; return the offset. ``principal=None`` is the server itself
        (may publish to ``jobs:*``). Raises ValidationError (422: channel name or
        priority) or Forbidden (403: scope or namespace)."""
        name = channels.check_publish(principal, channel)
        if priority not in PRIORITIES:
            raise ValidationError(f"priority must be one of {list(PRIORITIES)}")
        return await self.hub.publish(name, data, priority=priority)

    def stats(self) -> dict[str, Any]:
        snapshot = self._stats.snapshot()
        snapshot["connections"] = len(self._connections)
        snapshot["draining"] = self._draining
        snapshot["accept"] = {"waited": self._pace.waited, "refused": self._pace.refused}
        snapshot["hub"] = self.hub.stats()
        return snapshot

    # -- per connection -----------------------------------------------------------------------

    async def _serve_stream(self, stream: trio.SocketStream) -> None:
        """Everything about one TCP connection, in the connection's handler task; never
        raises (except Cancelled)."""
        wire = GatewayStream(stream)
        tasks = self._tasks
        assert tasks is not None, "run() starts the accept loops"
        try:
            request = None
            with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
                request = await wrap_server_stream(
                    cast(trio.Nursery, tasks),  # it only calls start_soon (ConnectionTasks)
                    wire,
                    message_queue_size=INBOUND_QUEUE_MESSAGES,
                    max_message_size=self.config.max_message_bytes,
                )
            conn = None if request is None else await self._open(request, wire)
            request = None  # this frame lives as long as the connection: not the request
            if conn is not None:
                wire.last_words = conn.last_words
                try:
                    await conn.run(tasks)
                finally:
                    self._closed(conn)
        except Exception:
            self._stats.internal_errors += 1
            log.exception("gateway: connection failed")
        finally:
            # Accepted connections are closed by now (Connection.run), rejected ones have
            # had their response. Closing the socket ends trio-websocket's reader (its
            # receive fails: it records an abnormal close if none was recorded, and
            # returns). Through the wire, so that its last words (a close frame
            # trio-websocket owes the peer) go out first.
            await trio.aclose_forcefully(wire)

    def client_of(self, request: WebSocketRequest, wire: GatewayStream) -> str | None:
        """The client's address: the TCP peer, or, when that peer is a trusted proxy, the
        client its ``X-Forwarded-For`` / ``Forwarded`` header names."""
        try:
            peer = str(wire.transport.socket.getpeername()[0])
        except OSError:
            peer = None
        client, _scheme = resolve_client(peer, "ws", request.headers, self._trusted)
        return client

    async def _open(self, request: WebSocketRequest, wire: GatewayStream) -> Connection | None:
        """Answer the handshake: a registered Connection, or None once rejected. New
        connections are paced first (:mod:`perfgate.gateway.accept`): over the rate, the
        handshake waits its turn, or is refused with 503 and ``Retry-After``."""
        client = self.client_of(request, wire)
        admitted, seconds = self._pace.admit(trio.current_time())
        headers: list[tuple[bytes, bytes]] = []
        try:
            if not admitted:
                headers = [(b"Retry-After", retry_after_header(seconds).encode())]
                raise Unavailable("too many new connections; retry later", retry_after_s=seconds)
            if seconds > 0:
                await trio.sleep(seconds)
            principal = self._admit(request)
        except PerfgateError as exc:
            self._stats.rejected[exc.status] += 1
            log.info("gateway: refused %s from %s: %s", exc.status, client or "-", exc.message)
            await request.reject(exc.status, extra_headers=headers, body=exc.message.encode())
            return None
        ws = await request.accept()
        conn = Connection(
            ws,
            wire=wire,
            pulse=self._pulse,
            plan=self._plan,
            timing=self._timing,
            client=client,
            session=secrets.token_urlsafe(12),
            principal=principal,
            hub=self.hub,
            config=self.config,
            stats=self._stats,
            close_timeout_s=self.config.close_timeout_s,
            on_rtt=self._on_rtt,
            on_delivery=self._on_delivery,
            frames=self._frames,
            job_tenant=self._job_tenant,
            jobs=self.jobs,
        )
        self._connections[conn] = None
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        self._stats.accepted += 1
        return conn

    def _closed(self, conn: Connection) -> None:
        """Bookkeeping once a connection's task tree is done."""
        del self._connections[conn]
        if not self._connections:
            self._idle.set()
        closed = conn.ws.closed
        code = closed.code if closed is not None else 1006
        if conn.close_code is not None and closed is not None and closed.code == 1000:
            # trio-websocket records 1000 for closes we start; report what we sent.
            code = conn.close_code
        self._stats.closes[code] += 1
        if self._on_close is not None:
            info = CloseInfo(
                session=conn.session,
                code=code,
                reason=conn.close_reason or (closed.reason if closed else None),
                duration_s=trio.current_time() - conn.opened_at,
                token_id=conn.principal.token_id,
                client=conn.client,
            )
            try:
                self._on_close(info)
            except Exception:
                log.exception("gateway: on_close callback failed")

    def _admit(self, request: WebSocketRequest) -> Principal:
        """Decide a handshake: the Principal, or a PerfgateError whose status is the
        HTTP answer (404 path, 503 draining/capacity, 403 origin or scope, 401 token)."""
        url = urlsplit(request.path)
        if url.path != WS_PATH:
            raise NotFound(f"no WebSocket endpoint at {url.path}; use {WS_PATH}")
        if self._draining:
            raise Unavailable("the server is shutting down")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
        origin = headers.get("origin")
        allowed = self.config.allowed_origins
        if origin is not None and allowed and "*" not in allowed and origin not in allowed:
            raise Forbidden("origin not allowed")
        token = bearer_token(headers.get("authorization"))
        if token is None:
            tokens = parse_qs(url.query).get("token")
            token = tokens[0] if tokens else None
        principal = self.authenticator.authenticate(token)
        if not principal.allows("submit"):  # a submit-only client follows its jobs here
            principal.require("subscribe")
        if len(self._connections) >= self.config.max_connections:
            raise Unavailable("too many connections; try later")
        return principal
