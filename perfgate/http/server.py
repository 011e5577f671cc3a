"""Serve the Quart app on Hypercorn's trio worker, as a component the supervisor starts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart import Quart

from perfgate.config import HttpConfig
from perfgate.http.proxy import TrustedProxyMiddleware


def hypercorn_config(config: HttpConfig, *, graceful_timeout_s: float) -> HypercornConfig:
    hc = HypercornConfig()
    hc.bind = [config.bind]
    hc.accesslog = None  # perfgate writes its own access line, with the request id
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.graceful_timeout = graceful_timeout_s
    hc.keep_alive_timeout = config.keep_alive_timeout_s
    hc.read_timeout = int(config.read_timeout_s)
    return hc


async def serve_http(
    app: Quart,
    config: HttpConfig,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    graceful_timeout_s: float,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until ``shutdown_trigger`` returns, then finish in-flight requests.

    ``task_status.started(url)`` reports the bound ``http://host:port`` (port 0 resolved).
    After the trigger, the listener closes at once and requests in flight get up to
    ``graceful_timeout_s`` to complete before they are cancelled.
    """
    hc = hypercorn_config(config, graceful_timeout_s=graceful_timeout_s)
    asgi: Any = (
        TrustedProxyMiddleware(app, config.trusted_proxies) if config.trusted_proxies else app
    )

    async def _serve(*, task_status: trio.TaskStatus[list[str]]) -> None:
        await serve(asgi, hc, shutdown_trigger=shutdown_trigger, task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(_serve)
        task_status.started(binds[0])
