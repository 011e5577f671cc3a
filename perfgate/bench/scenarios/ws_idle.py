"""``ws-idle``: what idle connections cost the server, in memory and in CPU.

Each client process opens its share of ``--idle-connections`` WebSocket connections (welcome,
then one subscription each, acked) before the run starts, answers pings, sends nothing, and
holds them through the measurement window. The bench, outside the server, reads the server
process's RSS (against the same server fresh, before any connection: bytes per connection)
and its CPU time over the window (:mod:`perfgate.bench.idle`). The latency this scenario
records is the connection set-up (connect, welcome, subscribe, ack) while the connections
are opened, 32 at a time per client process.
"""

from __future__ import annotations

import time
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, connect_websocket_url

from perfgate.bench.recorder import Recorder
from perfgate.bench.scenarios._base import ScenarioClient, ws_endpoint
from perfgate.bench.scenarios.ws_client import subscribe

#: connections opened at once per client process
OPENING_CONCURRENCY = 32


class WsIdleScenario(ScenarioClient):
    """The load generator holds these connections for the run instead of driving a schedule
    (:func:`perfgate.bench.loadgen.run_client`); ``setups`` stands for its requests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setups = Recorder()
        self.open = 0

    async def prepare(self, nursery: trio.Nursery) -> None:
        url = ws_endpoint(self.spec.ws_url)
        limiter = trio.CapacityLimiter(OPENING_CONCURRENCY)
        started = time.monotonic()
        self.setups.schedule_start_s = started
        self.setups.scheduled = self.spec.subscribers

        async def open_one(i: int) -> None:
            async with limiter:
                t0 = time.monotonic()
                self.setups.on_send(t0, t0)
                try:
                    with trio.fail_after(max(self.spec.timeout_s, 5.0)):
                        ws = await connect_websocket_url(nursery, url)
                        await subscribe(ws, self.spec.channel, f"idle-{self.spec.part}-{i}")
                except Exception as exc:  # a failed connection is counted, not fatal
                    self.setups.on_error(t0, t0, time.monotonic(), f"{type(exc).__name__}: {exc}")
                    return
                self.setups.on_done(t0, t0, time.monotonic())
                self.open += 1
                nursery.start_soon(_drain, ws)

        async with trio.open_nursery() as opening:
            for i in range(self.spec.subscribers):
                opening.start_soon(open_one, i)
        self.setups.schedule_end_s = time.monotonic()

    async def finish(self, start_at_s: float) -> dict[str, Any]:
        return {"deliveries": None, "idle_connections": self.open}


async def _drain(ws: WebSocketConnection) -> None:
    # read whatever the server sends (pings are answered by trio-websocket's reader, which
    # stops reading while its one-message queue is full)
    try:
        while True:
            await ws.get_message()
    except ConnectionClosed:
        return
