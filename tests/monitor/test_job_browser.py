"""The dashboard's job browser in a real headless Chromium against the real service.

Jobs are submitted over HTTP; the page (driven over the DevTools protocol) must list them,
filter them, show a job's arguments, logs and result, cancel a running job, and say plainly
when the gateway cannot be reached instead of showing an empty alert list.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from perfgate.config import TaskConfig
from tests.browser import DevTools, open_chromium


@asynccontextmanager
async def browser_page(url: str, profile: Path) -> AsyncIterator[DevTools]:
    """Chromium on ``url``; the DevTools session of its page."""
    process, devtools = await open_chromium(url, profile)
    try:
        async with httpx.AsyncClient() as client:
            with trio.fail_after(10):
                while True:
                    targets = (await client.get(f"{devtools}/json/list")).json()
                    pages = [t for t in targets if t.get("type") == "page"]
                    if pages:
                        break
                    await trio.sleep(0.1)
        async with open_websocket_url(pages[0]["webSocketDebuggerUrl"]) as ws:
            yield DevTools(ws)
    finally:
        process.kill()
        await process.wait()


async def until(tools: DevTools, expression: str, limit_s: float = 15) -> Any:
    """Evaluate ``expression`` (a JS expression giving JSON-able data) until it is truthy."""
    value: Any = None
    with trio.move_on_after(limit_s):
        while True:
            raw = await tools.evaluate(
                f"JSON.stringify((() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})())"
            )
            value = json.loads(raw) if raw else None
            if value:
                return value
            await trio.sleep(0.1)
    raise AssertionError(f"never true: {expression} (last: {value!r})")


ROWS = 'Array.from(document.querySelectorAll("#job-list tbody tr")).map((r) => [r.dataset.id, r.dataset.task, r.dataset.state])'


async def submit(http: httpx.AsyncClient, task: str, args: dict[str, Any]) -> str:
    response = await http.post("/v1/jobs", json={"task": task, "args": args})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@pytest.mark.timeout(90)
async def test_the_job_browser_lists_filters_shows_and_cancels_jobs(
    service_factory: Any, tmp_path: Path
) -> None:
    talker = TaskConfig(
        name="talker",
        command=("sh", "-c", 'for i in $(seq 1 "$1"); do echo "line $i"; done', "sh", "{count}"),
        timeout_s=30,
    )
    service = await service_factory(tasks={"talker": talker})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        echoes = [await submit(http, "echo", {"n": i}) for i in range(3)]
        talked = await submit(http, "talker", {"count": "5"})
        for job_id in [*echoes, talked]:
            await http.get(f"/v1/jobs/{job_id}?wait=20")
        async with browser_page(service.http + "/", tmp_path / "profile") as tools:
            # The list: every job, newest first.
            rows = await until(tools, f"{ROWS}.length >= 4 && {ROWS}")
            assert [r[0] for r in rows] == [talked, *reversed(echoes)]
            assert all(r[2] == "succeeded" for r in rows)
            # Live: a job submitted now appears without a reload.
            sleeper = await submit(http, "sleep", {"seconds": 20, "steps": 40})
            rows = await until(tools, f"{ROWS}.length === 5 && {ROWS}")
            assert rows[0][0] == sleeper

            # Filters: by task (typed), by state (chosen), then both cleared.
            await tools.evaluate(
                'const t = document.getElementById("job-task"); t.value = "echo";'
                ' t.dispatchEvent(new Event("change")); 1'
            )
            rows = await until(tools, f"{ROWS}.every((r) => r[1] === 'echo') && {ROWS}")
            assert sorted(r[0] for r in rows) == sorted(echoes)
            await tools.evaluate(
                'document.getElementById("job-task").value = "";'
                ' const s = document.getElementById("job-state"); s.value = "running";'
                ' s.dispatchEvent(new Event("change")); 1'
            )
            rows = await until(tools, f"{ROWS}.length === 1 && {ROWS}")
            assert rows == [[sleeper, "sleep", "running"]]

            # A job's page: arguments, state history, logs and result.
            await tools.evaluate(f'location.hash = "#job/{talked}"; 1')
            shown = await until(
                tools,
                '(document.getElementById("job-page").dataset.stream === "ended") && {'
                ' args: document.getElementById("job-args").textContent,'
                ' logs: Array.from(document.querySelectorAll("#job-logs div")).map((d) => d.textContent),'
                ' history: document.getElementById("job-history").textContent,'
                ' outcome: document.getElementById("job-outcome").textContent,'
                ' state: document.getElementById("job-state-now").textContent,'
                ' retryShown: !document.getElementById("job-retry").hidden }',
            )
            assert json.loads(shown["args"]) == {"count": "5"}
            assert shown["logs"] == [f"line {i}" for i in range(1, 6)]
            assert "running (attempt 1)" in shown["history"]
            assert "succeeded (attempt 1)" in shown["history"]
            assert shown["outcome"].startswith("result:")
            result = (await http.get(f"/v1/jobs/{talked}")).json()["result"]
            assert json.loads(shown["outcome"].removeprefix("result:")) == result
            assert shown["state"] == "succeeded"
            openapi = (await http.get("/openapi.json")).json()
            assert shown["retryShown"] == ("/v1/jobs/{job_id}/retry" in openapi["paths"])

            # Cancel the running job from its page: the server's answer is shown, and the job
            # is cancelled on the server.
            await tools.evaluate(f'location.hash = "#job/{sleeper}"; 1')
            await until(tools, 'document.getElementById("job-page").dataset.stream === "live"')
            await until(
                tools, 'Number(document.getElementById("job-progress").dataset.fraction) > 0'
            )
            await tools.evaluate('document.getElementById("job-cancel").click(); 1')
            answer = await until(
                tools,
                'document.getElementById("job-answer").textContent.startsWith("cancel") &&'
                ' document.getElementById("job-answer").textContent',
            )
            assert answer == "cancel: job is cancelled"
            assert (await http.get(f"/v1/jobs/{sleeper}")).json()["state"] == "cancelled"
            await until(
                tools,
                'document.getElementById("job-state-now").textContent === "cancelled"'
                ' && document.getElementById("job-cancel").disabled',
            )


@pytest.mark.timeout(60)
async def test_the_page_says_alerts_are_unknown_when_the_gateway_is_down(
    service_factory: Any, tmp_path: Path
) -> None:
    service = await service_factory(monitor={"sample_interval_s": 0.2})
    alerts = 'document.getElementById("alerts").textContent'
    status = 'document.getElementById("status").textContent'
    async with browser_page(service.http + "/", tmp_path / "profile") as tools:
        # Connected: the alert list is real.
        await until(tools, f'{status} === "live" && {alerts} === "No active alerts"')
        # The service stops (its gateway closes every connection): no false all-clear.
        service.supervisor.request_stop()
        text = await until(tools, f'{status}.startsWith("disconnected") && {alerts}')
        assert text == "alerts unknown: not connected"


@pytest.mark.timeout(60)
async def test_a_dead_gateway_port_says_alerts_unknown(
    service_factory: Any, tmp_path: Path
) -> None:
    service = await service_factory()
    dead = "ws://127.0.0.1:9/ws"  # discard port: nothing listens
    async with browser_page(f"{service.http}/?ws={dead}", tmp_path / "profile") as tools:
        text = await until(
            tools,
            'document.getElementById("status").textContent.startsWith("disconnected")'
            ' && document.getElementById("alerts").textContent',
        )
        assert text == "alerts unknown: not connected"
        # The job list, which goes through the HTTP API, still works.
        assert await until(tools, 'document.getElementById("job-list").dataset.loaded === "0"')


@pytest.mark.timeout(60)
async def test_the_token_entered_is_used_and_a_refusal_is_shown_plainly(
    service_factory: Any, tmp_path: Path
) -> None:
    tokens = {"reader-token-1": {"scopes": ["submit", "subscribe"], "tenant": "acme"}}
    service = await service_factory(auth={"tokens": tokens})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        response = await http.post(
            "/v1/jobs",
            json={"task": "echo", "args": {}},
            headers={"Authorization": "Bearer reader-token-1"},
        )
        job_id = response.json()["id"]
    async with browser_page(service.http + "/", tmp_path / "profile") as tools:
        refused = await until(tools, 'document.getElementById("job-list-status").textContent')
        assert refused.startswith("jobs unknown: 401")
        await tools.evaluate(
            'document.getElementById("token").value = "reader-token-1";'
            ' document.getElementById("token-form").requestSubmit(); 1'
        )
        rows = await until(tools, f"{ROWS}.length === 1 && {ROWS}")
        assert rows[0][0] == job_id
        assert await tools.evaluate('sessionStorage.getItem("perfgate-token")') == "reader-token-1"


@pytest.mark.timeout(60)
async def test_the_list_pages_with_the_apis_cursor(service_factory: Any, tmp_path: Path) -> None:
    service = await service_factory()
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        ids = [await submit(http, "echo", {"n": i}) for i in range(5)]
    newest_first = list(reversed(ids))
    async with browser_page(f"{service.http}/?jobs_limit=2", tmp_path / "profile") as tools:
        assert (
            await until(tools, f"{ROWS}.length === 2 && {ROWS}.map((r) => r[0])")
            == (newest_first[:2])
        )
        seen = []
        for page in (newest_first[2:4], newest_first[4:]):
            await tools.evaluate('document.getElementById("job-next").click(); 1')
            ids_shown = await until(
                tools,
                f"{ROWS}.length === {len(page)} && {ROWS}[0][0] === {json.dumps(page[0])} && {ROWS}.map((r) => r[0])",
            )
            seen.append(ids_shown)
        assert seen == [newest_first[2:4], newest_first[4:]]
        assert await tools.evaluate('document.getElementById("job-next").disabled') is True
        await tools.evaluate('document.getElementById("job-prev").click(); 1')
        back = await until(
            tools, f"{ROWS}[0][0] === {json.dumps(newest_first[2])} && {ROWS}.map((r) => r[0])"
        )
        assert back == newest_first[2:4]
