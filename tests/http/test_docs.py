"""``/docs``: an API browser made of package files only, which renders every operation of
``/openapi.json`` and every WebSocket operation of ``/asyncapi.json`` in a real Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import trio
from trio_websocket import open_websocket_url

from tests.browser import DevTools, open_chromium

READ_DOCS = """JSON.stringify({
  state: document.getElementById("status").dataset.state,
  status: document.getElementById("status").textContent,
  operations: [...document.querySelectorAll("section.op")].map((s) => s.dataset.operationId),
  responses: [...document.querySelectorAll("section.op tr[data-status]")].length,
  messages: [...document.querySelectorAll("section.message")].map((s) => s.dataset.operationId),
})"""


async def test_the_docs_page_loads_nothing_from_elsewhere(service: Any) -> None:
    async with httpx.AsyncClient(base_url=service.http) as http:
        page = await http.get("/docs")
        assert page.headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
            assert url.startswith("/"), url  # same origin, no CDN
            assert (await http.get(url)).status_code == 200, url


async def test_the_docs_page_renders_every_operation(service: Any, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=service.http) as http:
        openapi = (await http.get("/openapi.json")).json()
        asyncapi = (await http.get("/asyncapi.json")).json()
    operation_ids = [
        op["operationId"] for item in openapi["paths"].values() for op in item.values()
    ]
    responses = sum(
        len(op["responses"]) for item in openapi["paths"].values() for op in item.values()
    )
    page_url = service.http + "/docs"
    process, devtools = await open_chromium(page_url, tmp_path / "profile")
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
            with trio.move_on_after(20):
                while dom.get("state") not in ("ready", "error"):
                    raw = await tools.evaluate(READ_DOCS)
                    dom = json.loads(raw) if raw else {}
                    await trio.sleep(0.1)
    finally:
        process.kill()
        await process.wait()
    assert dom["state"] == "ready", dom
    assert dom["operations"] == operation_ids
    assert dom["responses"] == responses
    assert dom["messages"] == list(asyncapi["operations"])
