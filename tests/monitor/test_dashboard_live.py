"""The dashboard end to end: the real service, its real gateway, a real headless Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import read_dashboard, undrawn_charts


@pytest.mark.timeout(90)
async def test_dashboard_charts_receive_data_from_the_running_service(
    service_factory: Any, tmp_path: Path
) -> None:
    service = await service_factory(monitor={"sample_interval_s": 0.2})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        ids = [
            (await http.post("/v1/jobs", json={"task": "echo", "args": {"i": i}})).json()["id"]
            for i in range(20)
        ]
        for job_id in ids:
            await http.get(f"/v1/jobs/{job_id}?wait=20")
        dom = await read_dashboard(service.http + "/", tmp_path / "profile", until_points=5)
    assert dom, "the page never answered"
    assert dom["url"] == service.ws + "/ws"  # learnt from the page the app served
    assert dom["status"] == "live"
    assert all(n >= 5 for n in dom["points"].values()), str(dom["points"])
    assert undrawn_charts(dom) == {}, dom["lines"]
    assert int(dom["last"]["chart-ws-connections"]) >= 1  # the page itself is connected
    assert float(dom["last"]["chart-http-rate"]) > 0
    assert dom["last"]["chart-queue-depth"] == "0"  # the pool's figures arrive, all done
    assert dom["routes"] >= 2  # POST /v1/jobs and GET /v1/jobs/<job_id> at least
