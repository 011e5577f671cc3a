"""The live dashboard in a real headless Chromium, fed by a stand-in gateway.

The page is served by the real app (monitor blueprint); the gateway is a tiny stand-in built
with the ``websockets`` package that speaks the gateway protocol (docs/architecture.md §4) (welcome, subscribe, ack,
message and batch frames) and pushes snapshots made by a real :class:`Monitor`. The browser is
driven over the DevTools protocol; the test reads the DOM (and the canvases' pixels) to check
that every chart received data and drew it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from perfgate.config import HttpConfig, MonitorConfig
from perfgate.http.server import serve_http
from perfgate.monitor import Monitor, monitor_blueprint
from tests.browser import read_dashboard, undrawn_charts


class StandInGateway:
    """Pushes ``monitor.tick()`` snapshots on ``$sys:stats`` every 100 ms to each subscriber."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.lock = threading.Lock()  # one monitor, one connection thread at a time
        self.sent = 0
        self.subscribes: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.gateway_stats = {
            "connections": 7,
            "messages_sent": 0,
            "messages_dropped": 0,
            "closes": {"1001": 1},
        }
        self.server = serve(self.handle, "127.0.0.1", 0)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/ws"

    def handle(self, conn: ServerConnection) -> None:
        try:
            conn.send(json.dumps({"type": "welcome", "session": "s1", "heartbeat_s": 30}))
            request = json.loads(conn.recv(timeout=10))
            self.subscribes.append(request)
            conn.send(json.dumps({"type": "ack", "id": request.get("id"), "epoch": "e1"}))
            offset = 0
            while not self.stop.is_set():
                frames = []
                for _ in range(2 if offset % 3 == 2 else 1):  # every third frame is a batch
                    offset += 1
                    with self.lock:
                        for i in range(20):
                            self.monitor.observe_http("/v1/jobs", "POST", 202, 0.002 + i * 1e-4)
                        self.monitor.observe_ws_delivery(0.001)
                        self.gateway_stats["messages_sent"] += 25  # type: ignore[operator]
                        snapshot, _ = self.monitor.tick()
                    frames.append(
                        {
                            "type": "message",
                            "channel": "$sys:stats",
                            "offset": offset,
                            "data": snapshot,
                        }
                    )
                frame = frames[0] if len(frames) == 1 else {"type": "batch", "messages": frames}
                conn.send(json.dumps(frame))
                self.sent += len(frames)
                time.sleep(0.1)
        except (ConnectionClosed, TimeoutError):
            return


@pytest.fixture
def gateway() -> Any:
    monitor = Monitor(MonitorConfig(queue_depth_alert=10), raise_after_s=0.0)
    stand_in = StandInGateway(monitor)
    monitor.add_source("gateway", lambda: stand_in.gateway_stats)
    monitor.add_source(
        "pool",
        lambda: {
            "workers": {"idle": 0, "busy": 4, "total": 4},
            "queue": {"high": 20, "normal": 30},
        },
    )
    stand_in.thread.start()
    yield stand_in
    stand_in.stop.set()
    stand_in.server.shutdown()
    stand_in.thread.join(timeout=5)


@pytest.fixture
async def page_url(gateway: StandInGateway) -> AsyncIterator[str]:
    """The app serving the dashboard; its page points at the stand-in through the meta tag."""
    from quart_trio import QuartTrio

    app = QuartTrio("dashboard-test")
    # Serving the page only: the stand-in thread owns the monitor, so no request hooks here.
    app.register_blueprint(
        monitor_blueprint(gateway.monitor, ws_url=lambda: gateway.url, observe_requests=False)
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            lambda task_status: serve_http(
                app,
                HttpConfig(bind="127.0.0.1:0"),
                shutdown_trigger=stop.wait,
                graceful_timeout_s=1.0,
                task_status=task_status,
            )
        )
        yield url + "/"
        stop.set()


@pytest.mark.timeout(60)
async def test_dashboard_draws_live_stats_from_the_gateway(
    gateway: StandInGateway, page_url: str, tmp_path: Path
) -> None:
    dom = await read_dashboard(page_url, tmp_path / "profile", until_points=5)

    assert gateway.subscribes[0] == {"op": "subscribe", "channel": "$sys:stats", "id": 1}
    assert dom, "the page never answered"
    assert dom["url"] == gateway.url  # learnt from the meta tag the app served
    assert dom["status"] == "live"
    assert dom["messages"] >= 5 and dom["messages"] <= gateway.sent
    assert all(n >= 5 for n in dom["points"].values()), dom["points"]  # batches were unpacked
    assert undrawn_charts(dom) == {}, dom["lines"]  # every data line was drawn
    assert dom["last"]["chart-ws-connections"] == "7"
    assert dom["last"]["chart-queue-depth"] == "50"
    assert float(dom["last"]["chart-http-rate"]) > 0
    assert dom["alertCount"] >= 1 and "50 jobs queued" in dom["alerts"]
    assert "pool.queue_depth = 50" in dom["recommendations"]  # names its figure
    assert dom["routes"] == 1
