"""The clients the ``jobs`` scenarios submit through, one per kind of system.

``http`` (the scenario's own HTTP client, one connection per caller) lives in
:mod:`perfgate.bench.scenarios.jobs`; here are the shared, per-process clients:

- ``perfgate-client``: perfgate's own Python client, ``perfgate.client.AsyncClient``
  (``await client.submit(...)`` then ``await job.result(...)``), native on trio;
- ``celery``: ``echo.delay(x).get()``, Celery's synchronous client, one thread per caller
  (how concurrent callers use it), through ``trio.to_thread``;
- ``arq``: ``await pool.enqueue_job("echo", x)`` then ``await job.result()``, on an asyncio
  loop in a thread of its own (the load generator runs trio). Each call crosses threads
  twice, tens of microseconds against arq's milliseconds: a small bias against arq.

:func:`open_caller` yields ``call(args, timeout_s) -> result``; it raises on failure.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import Any

import trio

#: call(args, timeout_s) -> the task's result
Call = Callable[[dict[str, Any], float], Awaitable[Any]]


def perfgate_client_available() -> bool:
    """Whether ``perfgate.client.AsyncClient`` is importable here (the ``perfgate-client``
    system): a half-present package would crash every client process of the scenario."""
    import importlib

    try:
        module = importlib.import_module("perfgate.client")
    except ImportError:
        return False
    return hasattr(module, "AsyncClient")


def arq_redis_settings(redis_url: str) -> Any:
    from arq.connections import RedisSettings

    return RedisSettings.from_dsn(redis_url)


@asynccontextmanager
async def open_caller(
    client: str, http_url: str, redis_url: str, callers: int
) -> AsyncIterator[Call]:
    """The shared client of one load-generator process for ``client`` (see the module doc)."""
    if client == "perfgate-client":
        async with _perfgate_client(http_url) as call:
            yield call
    elif client == "celery":
        async with _celery(redis_url, callers) as call:
            yield call
    elif client == "arq":
        async with _arq(redis_url) as call:
            yield call
    else:
        raise ValueError(f"unknown job client {client!r}")


@asynccontextmanager
async def _perfgate_client(http_url: str) -> AsyncIterator[Call]:
    from perfgate.client import AsyncClient  # type: ignore[attr-defined,unused-ignore]

    async with AsyncClient(http_url) as client:

        async def call(args: dict[str, Any], timeout_s: float) -> Any:
            job = await client.submit("echo", args=args)
            return await job.result(timeout=timeout_s)

        yield call


@asynccontextmanager
async def _celery(redis_url: str, callers: int) -> AsyncIterator[Call]:
    from perfgate.bench.peers.celery_app import make_app

    app = make_app(redis_url)
    echo = app.tasks["echo"]
    limiter = trio.CapacityLimiter(max(1, callers))

    def blocking(args: dict[str, Any], timeout_s: float) -> Any:
        return echo.delay(args).get(timeout=timeout_s)

    async def call(args: dict[str, Any], timeout_s: float) -> Any:
        return await trio.to_thread.run_sync(
            partial(blocking, args, timeout_s), limiter=limiter, abandon_on_cancel=True
        )

    try:
        yield call
    finally:
        app.close()


class AsyncioThread:
    """An asyncio loop in a daemon thread, awaited from trio without blocking trio's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="asyncio", daemon=True)
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the loop; cancelling this cancels it there."""
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def wake(_: object) -> None:
            with suppress(trio.RunFinishedError):  # the load generator is already gone
                token.run_sync_soon(done.set)

        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        future.add_done_callback(wake)
        try:
            await done.wait()
        except trio.Cancelled:
            future.cancel()
            raise
        return future.result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


@asynccontextmanager
async def _arq(redis_url: str) -> AsyncIterator[Call]:
    from arq import create_pool

    from perfgate.bench.peers.arq_peer import POLL_DELAY_S

    bridge = AsyncioThread()
    try:
        pool = await bridge.run(create_pool(arq_redis_settings(redis_url)))

        async def submit_and_wait(args: dict[str, Any], timeout_s: float) -> Any:
            job = await pool.enqueue_job("echo", args)
            return await job.result(timeout=timeout_s, poll_delay=POLL_DELAY_S)

        async def call(args: dict[str, Any], timeout_s: float) -> Any:
            return await bridge.run(submit_and_wait(args, timeout_s))

        try:
            yield call
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await bridge.run(pool.aclose())
    finally:
        bridge.close()
