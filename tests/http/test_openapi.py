"""The OpenAPI document is exact: every route is in it, every operation states its security,
and every response the live server gives (success and error) is one the document declares,
with a body valid against the declared schema. schemathesis fuzzes the same document
(test_schemathesis.py); this test drives each route on purpose, including the errors a fuzzer
rarely reaches (401, 403, 409, 413, 415, 429, 304)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi
from quart import Quart

from perfgate.auth import Authenticator
from perfgate.config import TokenGrant, load_config
from perfgate.http.app import AppState, create_app
from perfgate.http.openapi import build_openapi, operation_of
from perfgate.monitor import Monitor
from perfgate.readiness import Readiness

TOKENS: dict[str, Any] = {
    "admin-token-1": ("admin",),
    # One tenant, so that the reader sees the submitter's jobs (tenancy: tests/test_tenancy.py).
    "submit-token-1": TokenGrant(("submit", "subscribe"), tenant="acme"),
    "reader-token-1": TokenGrant(("subscribe",), tenant="acme"),
    "scrape-token-1": ("metrics",),
}
ADMIN = {"Authorization": "Bearer admin-token-1"}
SUBMITTER = {"Authorization": "Bearer submit-token-1"}
READER = {"Authorization": "Bearer reader-token-1"}
SCRAPER = {"Authorization": "Bearer scrape-token-1"}


def make_app(tokens: dict[str, Any] | None = None) -> Quart:
    """The whole app, monitor routes included, as the supervisor builds it."""
    config = load_config(None, env={}, overrides={"auth": {"tokens": tokens or {}}})
    state = AppState(
        config=config, readiness=Readiness(), authenticator=Authenticator(config.auth.tokens)
    )
    state.services.monitor = Monitor(config.monitor)
    return create_app(state)


class Conformance:
    """Checks responses against one OpenAPI document and remembers what it saw."""

    def __init__(self, doc: dict[str, Any]) -> None:
        validate_openapi(doc)  # the document itself is valid OpenAPI 3.1
        self.doc = doc
        self.seen: set[tuple[str, str, str]] = set()
        self._templates = [
            (re.compile("^" + re.sub(r"\{(\w+)\}", r"[^/]+", path) + "$"), path)
            for path in doc["paths"]
        ]

    def operation(self, method: str, url: str) -> tuple[str, dict[str, Any]]:
        path = httpx.URL(url).path
        # A literal path wins over a template (/docs/docs.js is /docs/{name}, /docs is /docs).
        matches = sorted((t for rx, t in self._templates if rx.match(path)), key=len)
        matches.sort(key=lambda t: "{" in t)
        assert matches, f"{method} {path} is not in the document"
        template = matches[0]
        operation = self.doc["paths"][template].get(method.lower())
        assert operation is not None, f"{method} {template} is not in the document"
        return template, operation

    def check(self, response: httpx.Response) -> httpx.Response:
        method = response.request.method
        template, operation = self.operation(method, str(response.request.url))
        status = str(response.status_code)
        declared = operation["responses"].get(status)
        assert declared is not None, (
            f"{method} {template} answered {status}, not declared: {sorted(operation['responses'])}"
            f" ({response.text[:200]})"
        )
        content = declared.get("content")
        if content is None:
            assert response.content == b"", (method, template, status)
        else:
            media = response.headers["Content-Type"].split(";")[0].strip()
            assert media in content, (method, template, status, media, list(content))
            schema = content[media]["schema"]
            if media.endswith("json"):
                # Embed the components so that "#/components/..." references resolve.
                rooted = {**schema, "components": self.doc["components"]}
                jsonschema.Draft202012Validator(rooted).validate(response.json())
        self.seen.add((method, template, status))
        return response


def test_every_route_is_documented_and_states_its_security() -> None:
    for auth_enabled in (False, True):
        app = make_app(tokens=TOKENS if auth_enabled else None)
        doc = build_openapi(app, auth_enabled=auth_enabled)
        validate_openapi(doc)
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            assert operation_of(app.view_functions[rule.endpoint]) is not None, rule.rule
        used = set()
        for item in doc["paths"].values():
            for operation in item.values():
                assert "security" in operation, operation["operationId"]
                for requirement in operation["security"]:
                    used.update(requirement)
        assert set(doc["components"].get("securitySchemes", {})) == used


async def test_every_response_of_every_route_is_declared(service_factory: Any) -> None:
    service = await service_factory(auth={"tokens": TOKENS}, http={"max_body_bytes": 4096})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        doc = (await http.get("/openapi.json")).json()
        c = Conformance(doc)
        get, post, delete = http.get, http.post, http.delete
        # Open routes.
        for path in (
            "/healthz",
            "/readyz",
            "/v1/info",
            "/openapi.json",
            "/asyncapi.json",
            "/docs",
            "/",
        ):
            c.check(await get(path))
        for path in ("/docs/docs.js", "/docs/docs.css", "/docs/nope.js"):
            c.check(await get(path))
        for path in ("/dashboard/dashboard.js", "/dashboard/dashboard.css", "/dashboard/x"):
            c.check(await get(path))
        etag = (await get("/openapi.json")).headers["ETag"]
        c.check(await get("/openapi.json", headers={"If-None-Match": etag}))
        # The monitor, by scope.
        for headers in ({}, READER, SCRAPER, ADMIN):
            c.check(await get("/metrics", headers=headers))
            c.check(await get("/v1/stats", headers=headers))
        # Jobs.
        for headers in ({}, READER):
            c.check(await post("/v1/jobs", json={"task": "echo"}, headers=headers))
        job = c.check(
            await post("/v1/jobs", json={"task": "echo", "priority": None}, headers=SUBMITTER)
        ).json()
        assert job["priority"] == "normal"
        keyed = {"task": "echo", "args": {"a": 1}, "idempotency_key": "k-1"}
        c.check(await post("/v1/jobs", json=keyed, headers=SUBMITTER))
        c.check(await post("/v1/jobs", json=keyed, headers=SUBMITTER))  # 200, the same job
        c.check(await post("/v1/jobs", json={**keyed, "args": {"a": 2}}, headers=SUBMITTER))
        for bad in ({"task": "echo", "priority": "urgent"}, {"task": "nope"}, {"tsk": "echo"}):
            c.check(await post("/v1/jobs", json=bad, headers=SUBMITTER))
        raw = {**SUBMITTER, "Content-Type": "application/json"}
        c.check(await post("/v1/jobs", content=b"{not json", headers=raw))
        c.check(await post("/v1/jobs", content=b"task=echo", headers={**SUBMITTER}))
        c.check(await post("/v1/jobs", content=b'{"task": "' + b"x" * 5000 + b'"}', headers=raw))
        batch = {"jobs": [{"task": "echo"}, {"task": "nope"}, keyed, {**keyed, "args": {"a": 3}}]}
        answers = c.check(await post("/v1/jobs:batch", json=batch, headers=SUBMITTER)).json()
        assert [a["status"] for a in answers["jobs"]] == [202, 422, 200, 409]
        c.check(await post("/v1/jobs:batch", json={"jobs": []}, headers=SUBMITTER))
        c.check(await post("/v1/jobs:batch", json=batch, headers=READER))
        c.check(await post("/v1/jobs?wait=10", json={"task": "echo"}, headers=SUBMITTER))
        c.check(await post("/v1/jobs?wait=soon", json={"task": "echo"}, headers=SUBMITTER))
        jid = job["id"]
        c.check(await get(f"/v1/jobs/{jid}?wait=10", headers=READER))
        c.check(await get(f"/v1/jobs/{jid}", headers=READER))
        c.check(await get(f"/v1/jobs/{jid}", headers={}))
        c.check(await get(f"/v1/jobs/{jid}?wait=soon", headers=READER))
        c.check(await get("/v1/jobs/no-such-job", headers=READER))
        c.check(await get(f"/v1/jobs/{jid}/logs", headers=READER))
        c.check(await get(f"/v1/jobs/{jid}/events", headers=READER))
        c.check(await get("/v1/jobs/no-such-job/events", headers=READER))
        c.check(await get(f"/v1/jobs/{jid}/logs?after=-1", headers=READER))
        c.check(await get("/v1/jobs/no-such-job/logs", headers=READER))
        c.check(await get("/v1/jobs?limit=1", headers=READER))
        for query in ("state=bogus", "limit=0", "cursor=forged"):
            c.check(await get(f"/v1/jobs?{query}", headers=READER))
        c.check(await delete(f"/v1/jobs/{jid}", headers=SUBMITTER))
        c.check(await delete(f"/v1/jobs/{jid}", headers=READER))
        c.check(await delete("/v1/jobs/no-such-job", headers=SUBMITTER))
        # Retry: a finished job again (200), idempotent (200), by scope and tenancy (403/404),
        # and a succeeded one (409).
        late = {"task": "echo", "delay_s": 600}
        scheduled = c.check(await post("/v1/jobs", json=late, headers=SUBMITTER)).json()
        assert scheduled["state"] == "scheduled" and scheduled["run_at"] is not None
        c.check(await delete(f"/v1/jobs/{scheduled['id']}", headers=SUBMITTER))
        again = c.check(await post(f"/v1/jobs/{scheduled['id']}/retry", headers=SUBMITTER))
        assert again.status_code == 200 and again.json()["state"] in ("queued", "scheduled")
        c.check(await post(f"/v1/jobs/{scheduled['id']}/retry", headers=SUBMITTER))
        c.check(await post(f"/v1/jobs/{scheduled['id']}/retry", headers=READER))
        c.check(await post("/v1/jobs/no-such-job/retry", headers=SUBMITTER))
        done = c.check(await post("/v1/jobs?wait=10", json={"task": "echo"}, headers=SUBMITTER))
        refused = c.check(await post(f"/v1/jobs/{done.json()['id']}/retry", headers=ADMIN))
        assert refused.status_code == 409
        for bad in ({"task": "echo", "delay_s": 1, "run_at": "2030-01-01T00:00:00Z"},):
            c.check(await post("/v1/jobs", json=bad, headers=SUBMITTER))
        # Channels.
        c.check(await post("/v1/channels/news/messages", json={"data": 1}, headers=ADMIN))
        c.check(await post("/v1/channels/news/messages", json={"data": 1}))
        c.check(await post("/v1/channels/news/messages", json={"data": 1}, headers=READER))
        c.check(await post("/v1/channels/jobs:x/messages", json={"data": 1}, headers=ADMIN))
        c.check(await post("/v1/channels/news/messages", json={"dat": 1}, headers=ADMIN))
        c.check(
            await post(
                "/v1/channels/news/messages", json={"data": 1, "priority": None}, headers=ADMIN
            )
        )
    statuses = {(m, t): set() for t, item in doc["paths"].items() for m in item}
    for method, template, status in c.seen:
        statuses[(method.lower(), template)].add(status)
    # Every operation was seen succeeding, and every error status listed here was reached.
    for (method, template), seen in statuses.items():
        assert any(s.startswith("2") for s in seen), (method, template, seen)
    expected = {"304", "400", "401", "403", "404", "409", "413", "415", "422"}
    assert expected <= {status for _, _, status in c.seen}


async def test_rate_limited_responses_are_declared(service_factory: Any) -> None:
    service = await service_factory(http={"rate_limit_per_s": 0.01, "rate_burst": 2})
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        c = Conformance((await http.get("/openapi.json")).json())
        for _ in range(3):
            c.check(await http.get("/v1/jobs"))
        c.check(await http.post("/v1/jobs", json={"task": "echo"}))
        assert c.doc["paths"]["/healthz"]["get"]["responses"].keys() == {"200", "304"}
    assert {status for _, _, status in c.seen} == {"200", "429"}


@pytest.mark.parametrize("auth_enabled", [False, True])
def test_null_priority_is_in_the_document_as_the_server_takes_it(auth_enabled: bool) -> None:
    doc = build_openapi(make_app(), auth_enabled=auth_enabled)
    body = doc["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    jsonschema.Draft202012Validator(body["schema"]).validate({"task": "echo", "priority": None})
