"""The shape every client-side scenario has (see the package docstring)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import trio

from perfgate.bench.scenarios.http11 import HttpConnection, Response

if TYPE_CHECKING:
    from perfgate.bench.loadgen import ClientSpec, Op


class ScenarioClient:
    """Base class: no preparation, nothing to finish; subclasses define :meth:`operation`."""

    def __init__(self, spec: ClientSpec) -> None:
        self.spec = spec

    async def prepare(self, nursery: trio.Nursery) -> None:
        """Set up before the start signal. Tasks it starts live in ``nursery``."""

    def open_worker(self) -> Any:
        """An async context manager yielding one connection's :data:`Op`."""
        return self._worker()

    @asynccontextmanager
    async def _worker(self) -> AsyncIterator[Op]:
        async with http_client(self.spec.http_url) as client:

            async def op(seq: int, intended_s: float, sent_s: float) -> None:
                await self.operation(client, seq, intended_s, sent_s)

            yield op

    async def operation(
        self, client: HttpConnection, seq: int, intended_s: float, sent_s: float
    ) -> None:
        raise NotImplementedError

    async def finish(self, start_at_s: float) -> dict[str, Any]:
        """After the load: extra fields for the result line (``deliveries`` at least)."""
        return {"deliveries": None}


def http_client(base_url: str) -> HttpConnection:
    """One keep-alive connection: a bench 'connection' is one TCP connection, as in wrk2."""
    return HttpConnection(base_url)


def ws_endpoint(ws_url: str) -> str:
    """The WebSocket endpoint of a ``ws://host:port`` base: docs/architecture.md §4 puts it at ``/ws``."""
    parts = urlsplit(ws_url)
    path = parts.path if parts.path not in ("", "/") else "/ws"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


class UnexpectedResponse(Exception):
    """The server answered, but not what the scenario expects (counted as an error)."""


def expect_status(response: Response, *codes: int) -> None:
    if response.status_code not in codes:
        raise UnexpectedResponse(f"{response.method} {response.path}: HTTP {response.status_code}")
