"""The Redis connection: opening a client, and what a lost connection looks like.

Every Redis component (:mod:`perfgate.redis.hub`, :mod:`perfgate.redis.journal`,
:mod:`perfgate.redis.queue`) shares one coredis client opened by :func:`open_redis` and maps
a lost or refused connection to :class:`~perfgate.errors.Unavailable` (503) through
:func:`redis_unavailable`. See docs/architecture.md §6.

The client is ``coredis`` (anyio, so it runs on trio); it loads only when Redis is configured.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import anyio
import attrs
import coredis
import coredis.exceptions
import trio

from perfgate.config import parse_redis_url
from perfgate.errors import Unavailable

#: The name of the dependency in :class:`~perfgate.readiness.Readiness` while Redis is down.
DEPENDENCY = "redis"
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0
RETRY_AFTER_S = 1.0

#: What a lost or refused Redis connection raises, through coredis and anyio.
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    coredis.exceptions.ConnectionError,
    coredis.exceptions.BusyLoadingError,
    OSError,
    TimeoutError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)


def is_redis_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or every leaf of the group) is a lost or refused connection."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_redis_failure(e) for e in exc.exceptions)
    return isinstance(exc, (*REDIS_ERRORS, Unavailable))


def first_leaf(exc: BaseException) -> BaseException:
    """The first non-group exception of ``exc`` (for a one-line log)."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


@contextlib.contextmanager
def redis_unavailable(what: str) -> Iterator[None]:
    """Turn a Redis connection failure (bare or in a group) into Unavailable (503)."""
    try:
        yield
    except BaseException as exc:
        if isinstance(exc, trio.Cancelled) or not is_redis_failure(exc):
            raise
        raise Unavailable(f"{what}: redis unavailable", retry_after_s=RETRY_AFTER_S) from None


@contextlib.asynccontextmanager
async def open_redis(url: str) -> AsyncIterator[coredis.Redis[str]]:
    """A coredis client for ``redis://HOST:PORT/N``. Connects lazily: entering never fails
    because Redis is down; commands do (see :func:`redis_unavailable`)."""
    host, port, db = parse_redis_url(url)
    client = coredis.Redis(
        host,
        port,
        db,
        decode_responses=True,
        connect_timeout=CONNECT_TIMEOUT_S,
        stream_timeout=COMMAND_TIMEOUT_S,
        client_name="perfgate",
    )
    async with client:
        yield client


@attrs.define
class Backoff:
    """Reconnect delays: doubling from ``initial_s`` up to ``max_s``; :meth:`reset` on success."""

    initial_s: float = 0.1
    max_s: float = 5.0
    _next_s: float = attrs.field(default=0.0, init=False)

    def next(self) -> float:
        delay = self._next_s or self.initial_s
        self._next_s = min(self.max_s, delay * 2)
        return delay

    def reset(self) -> None:
        self._next_s = 0.0
