"""``http``: ``GET /healthz``, the cheapest request the server answers (pure HTTP overhead)."""

from __future__ import annotations

from perfgate.bench.scenarios._base import ScenarioClient, expect_status
from perfgate.bench.scenarios.http11 import HttpConnection


class HttpScenario(ScenarioClient):
    async def operation(
        self, client: HttpConnection, seq: int, intended_s: float, sent_s: float
    ) -> None:
        response = await client.get("/healthz")
        expect_status(response, 200)
