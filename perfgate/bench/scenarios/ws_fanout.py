"""``ws-fanout``: publish over HTTP, measure delivery at every WebSocket subscriber.

Each client process holds ``subscribers`` connections subscribed to one channel, and
publishes its slice of the schedule with ``POST /v1/channels/{channel}/messages``. Every
message carries its sequence number and its scheduled and actual send times
(``time.monotonic()``, comparable across processes on one machine), so a delivery's latency
is measured from the intended publish time, wherever it was published from. Subscribers count
duplicated deliveries; the parent derives lost ones (published x subscribers - unique).
"""

from __future__ import annotations

import time
from typing import Any

import attrs
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, connect_websocket_url

from perfgate.bench.recorder import Recorder
from perfgate.bench.scenarios._base import ScenarioClient, expect_status, ws_endpoint
from perfgate.bench.scenarios.http11 import HttpConnection
from perfgate.bench.scenarios.ws_client import payloads, subscribe
from perfgate.bench.schedule import Schedule


@attrs.define
class DeliveryTally:
    """One subscriber's view: which sequence numbers arrived, and how many twice."""

    seen: set[int] = attrs.field(factory=set)
    duplicated: int = 0

    def add(self, seq: int) -> bool:
        """Count a delivery; False when it is a duplicate."""
        if seq in self.seen:
            self.duplicated += 1
            return False
        self.seen.add(seq)
        return True


def record_frame(
    frame: str | bytes, tally: DeliveryTally, recorder: Recorder, now_s: float
) -> None:
    """Account one frame's deliveries (pure: the receive time is passed in)."""
    for data in payloads(frame):
        if not isinstance(data, dict) or "seq" not in data:
            continue  # not one of ours (another publisher on the channel)
        if tally.add(int(data["seq"])):
            recorder.on_done(float(data["t_intended"]), float(data["t_sent"]), now_s)


class WsFanoutScenario(ScenarioClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deliveries = Recorder()
        self.tallies: list[DeliveryTally] = []
        self._all_seen = trio.Event()

    def _total_slots(self) -> int:
        return Schedule(self.spec.rate_per_s, self.spec.duration_s).total_slots

    async def prepare(self, nursery: trio.Nursery) -> None:
        url = ws_endpoint(self.spec.ws_url)
        for i in range(self.spec.subscribers):
            ws = await connect_websocket_url(nursery, url)
            await subscribe(ws, self.spec.channel, request_id=f"sub-{self.spec.part}-{i}")
            tally = DeliveryTally()
            self.tallies.append(tally)
            nursery.start_soon(self._read, ws, tally)
        if not self.tallies:
            self._all_seen.set()

    async def _read(self, ws: WebSocketConnection, tally: DeliveryTally) -> None:
        total = self._total_slots()
        try:
            while True:
                frame = await ws.get_message()
                record_frame(frame, tally, self.deliveries, time.monotonic())
                if len(tally.seen) >= total and all(len(t.seen) >= total for t in self.tallies):
                    self._all_seen.set()
        except ConnectionClosed:
            return

    async def operation(
        self, client: HttpConnection, seq: int, intended_s: float, sent_s: float
    ) -> None:
        data = {"seq": seq, "t_intended": intended_s, "t_sent": sent_s}
        response = await client.post(f"/v1/channels/{self.spec.channel}/messages", {"data": data})
        expect_status(response, 200, 201, 202)

    async def finish(self, start_at_s: float) -> dict[str, Any]:
        # trailing deliveries: until every subscriber saw every slot, or the timeout
        end_s = start_at_s + self.spec.duration_s + self.spec.timeout_s
        with trio.move_on_after(max(0.0, end_s - time.monotonic())):
            await self._all_seen.wait()
        return {
            "deliveries": self.deliveries.to_json(),
            "subscribers": len(self.tallies),
            "unique_deliveries": sum(len(t.seen) for t in self.tallies),
            "duplicated": sum(t.duplicated for t in self.tallies),
        }
