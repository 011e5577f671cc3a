"""Where a connection's background tasks run: the gateway's one shared nursery, contained.

A connection has no nursery of its own (see :mod:`perfgate.gateway.server`): its
trio-websocket reader, its writer and its heartbeat probes start through
:class:`ConnectionTasks`, which puts them in the gateway's nursery and catches what they
raise, so that one connection's failure never cancels the others.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from perfgate.gateway.stats import GatewayStats

log = logging.getLogger("perfgate.gateway")


class TaskStarter(Protocol):
    """What a connection needs of a nursery: ``start_soon``."""

    def start_soon(
        self, async_fn: Callable[..., Awaitable[object]], *args: object, name: str | None = None
    ) -> None: ...


class ConnectionTasks:
    """Starts a connection's background tasks in the gateway's shared nursery, each one
    contained: what it raises (except Cancelled) is logged and counted, never propagated.

    It stands in for a nursery in two places: :func:`trio_websocket.wrap_server_stream`,
    which only calls ``start_soon`` on the nursery it is given (its reader task; pinned for
    trio-websocket 0.12 by ``tests/gateway/test_lean.py``), and :meth:`Connection.run`
    (the writer, heartbeat probes). One object serves every connection.
    """

    __slots__ = ("_nursery", "_stats")

    def __init__(self, nursery: trio.Nursery, stats: GatewayStats) -> None:
        self._nursery = nursery
        self._stats = stats

    def start_soon(
        self, async_fn: Callable[..., Awaitable[object]], *args: object, name: str | None = None
    ) -> None:
        # A constant name: trio would otherwise build one string per task. The only caller
        # that names no task is trio-websocket, starting its reader.
        self._nursery.start_soon(
            self._contained, async_fn, args, name=name or "gateway.websocket-reader"
        )

    async def _contained(
        self, async_fn: Callable[..., Awaitable[object]], args: tuple[object, ...]
    ) -> None:
        try:
            await async_fn(*args)
        except Exception:
            self._stats.internal_errors += 1
            log.exception("gateway: a connection's task failed")
