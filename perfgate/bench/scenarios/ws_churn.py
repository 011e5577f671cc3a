"""``ws-churn``: connect, read the welcome, subscribe (wait for the ack), disconnect.

Measures what a reconnect storm costs: the handshake, the per-connection task tree the
gateway starts and tears down, and a subscription's bookkeeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from trio_websocket import open_websocket_url

from perfgate.bench.scenarios._base import ScenarioClient, ws_endpoint
from perfgate.bench.scenarios.ws_client import subscribe

if TYPE_CHECKING:
    from perfgate.bench.loadgen import Op


class WsChurnScenario(ScenarioClient):
    @asynccontextmanager
    async def _worker(self) -> AsyncIterator[Op]:
        url = ws_endpoint(self.spec.ws_url)
        channel = self.spec.channel

        async def op(seq: int, intended_s: float, sent_s: float) -> None:
            async with open_websocket_url(url, disconnect_timeout=self.spec.timeout_s) as ws:
                await subscribe(ws, channel, request_id=f"churn-{seq}")

        yield op
