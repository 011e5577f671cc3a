"""Drive a real headless Chromium over the DevTools protocol, for the dashboard tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import trio
from trio_websocket import open_websocket_url

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
CHARTS = [
    "chart-http-rate",
    "chart-http-latency",
    "chart-ws-connections",
    "chart-ws-rate",
    "chart-pool-workers",
    "chart-queue-depth",
    "chart-cpu",
    "chart-memory",
]


async def open_chromium(url: str, profile: Path) -> tuple[trio.Process, str]:
    """Start headless Chromium on ``url``; return it and its DevTools port's HTTP base."""
    log = (profile.parent / "chromium.log").open("wb")
    process = await trio.lowlevel.open_process(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "--window-size=1280,1000",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    active_port = profile / "DevToolsActivePort"
    with trio.fail_after(20):
        while not active_port.exists() or not active_port.read_text().strip():
            if process.poll() is not None:
                raise RuntimeError(f"chromium exited {process.returncode}")
            await trio.sleep(0.05)
    port = active_port.read_text().split()[0]
    return process, f"http://127.0.0.1:{port}"


class DevTools:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    async def evaluate(self, expression: str) -> Any:
        self.next_id += 1
        request = {
            "id": self.next_id,
            "method": "Runtime.evaluate",
            "params": {"expression": expression, "returnByValue": True},
        }
        await self.ws.send_message(json.dumps(request))
        while True:
            reply = json.loads(await self.ws.get_message())
            if reply.get("id") == self.next_id:
                return reply["result"]["result"].get("value")


# The charts' gridlines and labels are grey and every data series has a saturated colour (see
# COLORS in dashboard.js), so the coloured pixels on a canvas are its data lines, and only those:
# a series drawn over a gridline or over another series still counts.
READ_DOM = """JSON.stringify({
  status: document.getElementById("status").textContent,
  messages: Number(document.getElementById("status").dataset.messages),
  url: document.getElementById("status").dataset.url,
  points: Object.fromEntries(CHART_IDS.map((id) => [id, Number(document.getElementById(id).dataset.points)])),
  last: Object.fromEntries(CHART_IDS.map((id) => [id, document.getElementById(id).dataset.last])),
  lines: Object.fromEntries(CHART_IDS.map((id) => {
    const c = document.getElementById(id);
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let coloured = 0, grey = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] < 128) continue;
      const spread = Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]);
      if (spread >= 64) coloured++; else grey++;
    }
    return [id, {width: c.width, coloured: coloured, grey: grey}];
  })),
  alerts: document.getElementById("alerts").textContent,
  alertCount: Number(document.getElementById("alerts").dataset.count),
  recommendations: document.getElementById("recommendations").textContent,
  routes: document.querySelectorAll("#routes tbody tr").length,
})""".replace("CHART_IDS", json.dumps(CHARTS))


def undrawn_charts(dom: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The charts whose data lines did not paint at least half the canvas width in colour (a
    chart's points span its whole width), with their pixel counts."""
    return {
        chart: reading
        for chart, reading in dom["lines"].items()
        if reading["coloured"] < reading["width"] / 2
    }


async def read_dashboard(
    page_url: str, profile: Path, *, until_points: int, limit_s: float = 20
) -> dict[str, Any]:
    """Open ``page_url`` in Chromium and poll the dashboard's DOM until every chart has
    ``until_points`` points (or ``limit_s`` passes); return the last reading."""
    process, devtools = await open_chromium(page_url, profile)
    try:
        async with httpx.AsyncClient() as client:
            with trio.fail_after(10):
                while True:
                    targets = (await client.get(f"{devtools}/json/list")).json()
                    pages = [t for t in targets if t.get("type") == "page" and t["url"] == page_url]
                    if pages:
                        break
                    await trio.sleep(0.1)
        async with open_websocket_url(pages[0]["webSocketDebuggerUrl"]) as ws:
            tools = DevTools(ws)
            dom: dict[str, Any] = {}
            with trio.move_on_after(limit_s):
                while True:
                    raw = await tools.evaluate(READ_DOM)
                    dom = json.loads(raw) if raw else {}
                    if dom and min(dom["points"].values()) >= until_points:
                        break
                    await trio.sleep(0.2)
            return dom
    finally:
        process.kill()
        await process.wait()
