"""Job routes (the README's HTTP API): submit, get (with long-poll), cancel, retry, list, logs.

Each job belongs to the tenant of the token that submitted it; a token without ``admin``
reaches its own tenant's jobs only, and another tenant's job answers 404 like an unknown one.
"""

from __future__ import annotations

import re
from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request

from perfgate.config import HttpConfig
from perfgate.errors import PerfgateError, Unavailable, ValidationError
from perfgate.http.bodies import read_json
from perfgate.http.openapi import document
from perfgate.http.problems import error_body
from perfgate.http.security import principal, requires
from perfgate.http.services import Services
from perfgate.jobs import JobService
from perfgate.schema import JOB, JOB_LIST, JOB_LOGS, JOB_STATES, SUBMIT_JOB, submit_batch
from perfgate.store import JobRecord

# The response tables live beside the request tables (perfgate.schema), exact by test.
JOB_SCHEMA, LIST_SCHEMA, LOGS_SCHEMA = JOB, JOB_LIST, JOB_LOGS
ID_LIMIT = 64
_DIGITS = re.compile(r"[0-9]{1,20}")
_JOB_ID_FROM_BODY = {"job_id": "$response.body#/id"}
#: Where a submitted job can be followed (OpenAPI links: clients and fuzzers use them).
JOB_LINKS = {
    "GetJob": {"operationId": "get_job", "parameters": _JOB_ID_FROM_BODY},
    "CancelJob": {"operationId": "cancel_job", "parameters": _JOB_ID_FROM_BODY},
    "JobLogs": {"operationId": "job_logs", "parameters": _JOB_ID_FROM_BODY},
}


def _service() -> JobService:
    services: Services = current_app.config["PERFGATE"].services
    service = services.jobs
    if service is None:
        raise Unavailable("the job service is not running")
    return service


def _number_arg(name: str, default: float, *, minimum: float = 0) -> float:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(
            f"{name} must be a number", errors=[{"field": name, "message": "not a number"}]
        ) from None
    if not value >= minimum or value == float("inf"):
        raise ValidationError(
            f"{name} must be >= {minimum:g}", errors=[{"field": name, "message": "out of range"}]
        )
    return value


def _int_arg(name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    # ASCII digits only (str.isdigit() also accepts '²', which int() refuses), and few of
    # them (int() refuses more than 4,300 digits).
    if not _DIGITS.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise ValidationError(
            f"{name} must be an integer between {minimum} and {maximum}",
            errors=[{"field": name, "message": "out of range"}],
        )
    return int(raw)


def _job_response(job: dict[str, Any], status: int) -> Response:
    response = jsonify(job)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


blueprint = Blueprint("jobs", __name__)


WAIT_QUERY = {
    "name": "wait",
    "in": "query",
    "required": False,
    "schema": {"type": "number", "minimum": 0},
    "description": "long-poll up to this many seconds (capped by [http] max_wait_s) for the "
    "job to finish",
}
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "the same as the body's idempotency_key (give either, or both equal)",
}
SUBMIT_WAIT_QUERY = {
    **WAIT_QUERY,
    "description": "hold the request up to this many seconds (capped by [http] max_wait_s) "
    "for the job to finish: 200 with the finished job, else 202 with the job as it stands",
}


@blueprint.post("/v1/jobs")
@document(
    "Submit a job (optionally wait for it to finish: one request per job)",
    body=SUBMIT_JOB,
    responses={200: JOB_SCHEMA, 202: JOB_SCHEMA, 409: None, 503: None},
    scope="submit",
    query=[SUBMIT_WAIT_QUERY, IDEMPOTENCY_HEADER],
    tags=["jobs"],
    links=JOB_LINKS,
)
@requires("submit")
async def submit_job() -> Response:
    # Checked before the body is read or anything is journalled: a bad wait submits nothing.
    wait_s = _number_arg("wait", 0.0)
    body = _with_header_key(await read_json())
    service = _service()
    if wait_s > 0:
        record, _created = await service.submit_and_wait(body, wait_s, tenant=principal().tenant)
        status = 200 if record.finished else 202
    else:
        record, created = await service.submit(body, tenant=principal().tenant)
        status = 202 if created else 200
    response = _job_response(record.to_json(), status)
    response.headers["Location"] = f"/v1/jobs/{record.id}"
    return response


def _with_header_key(body: Any) -> Any:
    """The body with the ``Idempotency-Key`` header folded in as its ``idempotency_key``: the
    same 200/409 rules follow. A header and a body field that differ are a 422 naming both;
    a body that is no object is left for the body's own check to refuse."""
    key = request.headers.get("Idempotency-Key")
    if key is None or not isinstance(body, dict):
        return body
    given = body.get("idempotency_key")
    if given is not None and given != key:
        raise ValidationError(
            "the Idempotency-Key header and the body's idempotency_key differ",
            errors=[
                {"field": "Idempotency-Key", "message": "differs from idempotency_key"},
                {"field": "idempotency_key", "message": "differs from the Idempotency-Key header"},
            ],
        )
    return {**body, "idempotency_key": key}


BATCH_ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "integer", "enum": [200, 202, 409, 422, 429]},
        "job": JOB_SCHEMA,
        "error": {"$ref": "#/components/schemas/Problem"},
    },
    "required": ["status"],
}
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"jobs": {"type": "array", "items": BATCH_ITEM_SCHEMA}},
    "required": ["jobs"],
}


def _batch_item(outcome: tuple[JobRecord, bool] | PerfgateError) -> dict[str, Any]:
    if isinstance(outcome, PerfgateError):
        return {"status": outcome.status, "error": error_body(outcome)}
    record, created = outcome
    return {"status": 202 if created else 200, "job": record.to_json()}


@blueprint.post("/v1/jobs:batch")
@document(
    "Submit several jobs, committed together and answered one by one",
    body=submit_batch(HttpConfig().max_batch_jobs),
    responses={200: BATCH_SCHEMA, 503: None},
    scope="submit",
    tags=["jobs"],
)
@requires("submit")
async def submit_jobs() -> Response:
    if "Idempotency-Key" in request.headers:
        # One key for several jobs would name none of them: each item carries its own.
        raise ValidationError(
            "the Idempotency-Key header is not taken by the batch route; give each job its "
            "own idempotency_key",
            errors=[{"field": "Idempotency-Key", "message": "not allowed on a batch"}],
        )
    config: HttpConfig = current_app.config["PERFGATE"].config.http
    request_body = submit_batch(config.max_batch_jobs).parse(await read_json())
    outcomes = await _service().submit_many(request_body["jobs"], tenant=principal().tenant)
    response = jsonify({"jobs": [_batch_item(outcome) for outcome in outcomes]})
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/v1/jobs/<job_id>")
@document(
    "Get a job (optionally long-poll until it finishes)",
    responses={200: JOB_SCHEMA, 404: None, 422: None},
    scope="subscribe",
    query=[WAIT_QUERY],
    tags=["jobs"],
)
@requires("subscribe")
async def get_job(job_id: str) -> Response:
    wait_s = _number_arg("wait", 0.0)
    service = _service()
    tenant = principal().tenant_filter
    record = await (
        service.wait(job_id, wait_s, tenant=tenant)
        if wait_s > 0
        else service.get(job_id, tenant=tenant)
    )
    return _job_response(record.to_json(), 200)


@blueprint.delete("/v1/jobs/<job_id>")
@document(
    "Cancel a job (idempotent)",
    responses={200: JOB_SCHEMA, 404: None},
    scope="submit",
    tags=["jobs"],
)
@requires("submit")
async def cancel_job(job_id: str) -> Response:
    record = await _service().cancel(job_id, tenant=principal().tenant_filter)
    return _job_response(record.to_json(), 200)


@blueprint.post("/v1/jobs/<job_id>/retry")
@document(
    "Run a failed, dead or cancelled job again (idempotent; attempts carry on)",
    responses={200: JOB_SCHEMA, 404: None, 409: None, 422: None, 429: None, 503: None},
    scope="submit",
    tags=["jobs"],
    links=JOB_LINKS,
)
@requires("submit")
async def retry_job(job_id: str) -> Response:
    record = await _service().retry(job_id, tenant=principal().tenant_filter)
    return _job_response(record.to_json(), 200)


LIST_QUERY = [
    {
        "name": "state",
        "in": "query",
        "required": False,
        "schema": {
            "type": "string",
            "enum": JOB_STATES,
        },
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": 200},
    },
]


@blueprint.get("/v1/jobs")
@document(
    "List jobs, newest first",
    responses={200: LIST_SCHEMA, 400: None, 422: None},
    scope="subscribe",
    query=LIST_QUERY,
    tags=["jobs"],
)
@requires("subscribe")
async def list_jobs() -> Response:
    limit = _int_arg("limit", 50, minimum=1, maximum=1000)
    jobs, cursor = await _service().journal.list_jobs(
        # "?state=" is not "no filter": the document says state is one of the enum (422 else).
        state=request.args.get("state"),
        limit=limit,
        cursor=request.args.get("cursor") or None,
        tenant=principal().tenant_filter,
    )
    response = jsonify({"jobs": [j.to_json() for j in jobs], "next_cursor": cursor})
    response.headers["Cache-Control"] = "no-store"
    return response


LOGS_QUERY = [
    {
        "name": "after",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 0, "maximum": 2**62},
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 10000},
    },
]


@blueprint.get("/v1/jobs/<job_id>/logs")
@document(
    "A job's log lines",
    responses={200: LOGS_SCHEMA, 404: None, 422: None},
    scope="subscribe",
    query=LOGS_QUERY,
    tags=["jobs"],
)
@requires("subscribe")
async def job_logs(job_id: str) -> Response:
    service = _service()
    await service.get(job_id, tenant=principal().tenant_filter)  # 404: unknown, or not ours
    after = _int_arg("after", 0, minimum=0, maximum=2**62)
    limit = _int_arg("limit", 1000, minimum=1, maximum=10_000)
    lines = await service.journal.logs(job_id, after=after, limit=limit)
    response = jsonify({"lines": lines})
    response.headers["Cache-Control"] = "no-store"
    return response
