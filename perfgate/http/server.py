"""Serve the Quart app on Hypercorn's trio worker, as a component the supervisor starts."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart import Quart

from perfgate.config import HttpConfig
from perfgate.http.closing import is_final_body, send_shielded
from perfgate.http.draining import close_header
from perfgate.http.head_limit import refuse, too_large
from perfgate.http.proxy import parse_networks, rewrite_scope


def _never() -> bool:
    return False


def hypercorn_config(config: HttpConfig, *, graceful_timeout_s: float) -> HypercornConfig:
    """Map ``[http]`` onto Hypercorn's settings.

    Slow clients: Hypercorn's keep-alive timer runs from the moment a connection opens (and
    again after each response) until a *complete* request head has arrived, so
    ``keep_alive_timeout_s`` is also the deadline for sending the request line and headers: a
    slowloris client is cut off after it however slowly it trickles. ``read_timeout_s`` bounds
    each read (a client silent that long is dropped) and, in the app, the whole body.
    """
    hc = HypercornConfig()
    hc.bind = [config.bind]
    hc.accesslog = None  # perfgate writes its own access line, with the request id
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.graceful_timeout = graceful_timeout_s
    hc.keep_alive_timeout = config.keep_alive_timeout_s
    # Hypercorn treats a read_timeout of 0 as "none": round up so 0.5 s stays a timeout.
    hc.read_timeout = max(1, math.ceil(config.read_timeout_s))
    hc.h11_max_incomplete_size = config.max_header_bytes
    hc.h2_max_header_list_size = config.max_header_bytes
    hc.keep_alive_max_requests = config.max_requests_per_connection
    hc.backlog = config.backlog
    return hc


class EdgeASGI:
    """The one ASGI wrapper around the app, in this order: the exact request-head limit
    (:mod:`perfgate.http.limits`), trusted-proxy resolution (:mod:`perfgate.http.proxy`, when
    proxies are configured), ``Connection: close`` on HTTP/1 responses while ``closing()``
    (:mod:`perfgate.http.draining`), and the final-send shield (:mod:`perfgate.http.closing`).

    One wrapper rather than one per concern: each layer cost a coroutine frame on the way in
    and a wrapped ``send`` per message on the way out, for every request.
    """

    def __init__(self, app: Any, config: HttpConfig, closing: Callable[[], bool]) -> None:
        self.app = app
        self.max_header_bytes = config.max_header_bytes
        self.trusted = parse_networks(config.trusted_proxies)
        self.closing = closing

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if too_large(scope, self.max_header_bytes):
            await refuse(scope, send, self.max_header_bytes)
            return
        if self.trusted:
            scope = rewrite_scope(scope, self.trusted)
        if kind != "http":
            await self.app(scope, receive, send)
            return
        http1 = scope.get("http_version") in ("1.0", "1.1")
        closing = self.closing

        async def send_edge(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                if http1 and closing():
                    message = {**message, "headers": close_header(message.get("headers", ()))}
                await send(message)
            elif is_final_body(message):
                await send_shielded(send, message)
            else:
                await send(message)

        await self.app(scope, receive, send_edge)


def wrap_app(app: Quart, config: HttpConfig, *, closing: Callable[[], bool] = _never) -> Any:
    """The ASGI stack Hypercorn runs: :class:`EdgeASGI`, then the app."""
    return EdgeASGI(app, config, closing)


async def serve_http(
    app: Quart,
    config: HttpConfig,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    graceful_timeout_s: float,
    closing: Callable[[], bool] = _never,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until ``shutdown_trigger`` returns, then finish in-flight requests.

    ``task_status.started(url)`` reports the bound ``http://host:port`` (port 0 resolved).
    While ``closing()`` is true (the service drains) the listener stays open and every HTTP/1
    response carries ``Connection: close``. After the trigger, the listener closes at once,
    idle connections are closed, and requests in flight get up to ``graceful_timeout_s`` to
    complete before they are cancelled; this call returns when all are done.
    """
    hc = hypercorn_config(config, graceful_timeout_s=graceful_timeout_s)
    asgi = wrap_app(app, config, closing=closing)

    async def _serve(*, task_status: trio.TaskStatus[list[str]]) -> None:
        await serve(asgi, hc, shutdown_trigger=shutdown_trigger, task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(_serve)
        task_status.started(binds[0])
