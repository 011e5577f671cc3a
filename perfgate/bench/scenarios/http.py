"""``http``: ``GET /healthz``, the cheapest request the server answers (pure HTTP overhead)."""

from __future__ import annotations

import httpx

from perfgate.bench.scenarios._base import ScenarioClient, expect_status


class HttpScenario(ScenarioClient):
    async def operation(
        self, client: httpx.AsyncClient, seq: int, intended_s: float, sent_s: float
    ) -> None:
        response = await client.get("/healthz")
        expect_status(response, 200)
