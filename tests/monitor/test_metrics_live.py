"""/metrics on the wired service: the series the components feed carry real figures."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from perfgate.supervisor import DELIVERY_SAMPLE_EVERY
from tests.gateway.wsclient import Client


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_components_feed_the_metrics(service_factory: Any) -> None:
    # No batching: each publish is one write to the subscriber, so the sampled count is known.
    service = await service_factory(
        http={"rate_limit_per_s": 1.0, "rate_burst": 300}, gateway={"batch_window_ms": 0}
    )
    ws = await Client.connect(service.ws)
    await ws.recv()
    await ws.request({"op": "subscribe", "channel": "news", "id": 1})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        job = (await http.post("/v1/jobs", json={"task": "echo", "args": {"a": 1}})).json()
        await http.get(f"/v1/jobs/{job['id']}?wait=20")
        # The delivery histogram samples one write in DELIVERY_SAMPLE_EVERY.
        for n in range(DELIVERY_SAMPLE_EVERY + 8):
            await http.post("/v1/channels/news/messages", json={"data": n})
        await ws.messages(DELIVERY_SAMPLE_EVERY + 8)
        # Then exhaust the client's bucket (publishes cost 5 tokens each, reads 1).
        statuses = [(await http.get("/openapi.json")).status_code for _ in range(150)]
        assert 429 in statuses
        got = samples((await http.get("/metrics")).text)
    published = DELIVERY_SAMPLE_EVERY + 8
    expected = {
        ("perfgate_http_rate_limited_total", ()): statuses.count(429),
        # One write per publish to the one subscriber; one in DELIVERY_SAMPLE_EVERY observed.
        ("perfgate_ws_delivery_seconds_count", ()): published // DELIVERY_SAMPLE_EVERY,
        ("perfgate_ws_connections", ()): 1,
        ("perfgate_ws_messages_sent_total", ()): published,
        ("perfgate_pool_workers_running", ()): 1,  # min_workers, and one job never grew it
        ("perfgate_pool_queue_depth", (("priority", "normal"),)): 0,
        ("perfgate_pool_jobs_total", (("outcome", "succeeded"),)): 1,
        ("perfgate_pool_jobs_total", (("outcome", "failed"),)): 0,
        ("perfgate_job_duration_seconds_count", (("outcome", "succeeded"), ("task", "echo"))): 1,
        (
            "perfgate_http_request_duration_seconds_count",
            (("method", "POST"), ("route", "/v1/jobs"), ("status_class", "2xx")),
        ): 1,
        (
            "perfgate_http_request_duration_seconds_count",
            (
                ("method", "POST"),
                ("route", "/v1/channels/<channel>/messages"),
                ("status_class", "2xx"),
            ),
        ): published,
    }
    assert {key: got.get(key) for key in expected} == expected
