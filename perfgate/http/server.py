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
from perfgate.http.closing import ShieldFinalSendMiddleware
from perfgate.http.draining import CloseWhileDrainingMiddleware
from perfgate.http.head_limit import HeadLimitMiddleware
from perfgate.http.proxy import TrustedProxyMiddleware


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


def wrap_app(app: Quart, config: HttpConfig, *, closing: Callable[[], bool] = _never) -> Any:
    """The ASGI stack Hypercorn runs: ``Connection: close`` while ``closing()``, the
    final-send shield, the exact request-head limit, trusted-proxy resolution (when proxies
    are configured), then the app."""
    asgi: Any = (
        TrustedProxyMiddleware(app, config.trusted_proxies) if config.trusted_proxies else app
    )
    return CloseWhileDrainingMiddleware(
        ShieldFinalSendMiddleware(HeadLimitMiddleware(asgi, config.max_header_bytes)), closing
    )


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
