"""Errors as HTTP problem documents (perfgate.http.problems): one shape for every error, the
headers each kind of error owes the client, and nothing revealed by an unexpected one."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from quart import Response
from werkzeug.exceptions import Gone, MethodNotAllowed, NotFound, RequestEntityTooLarge

from perfgate.errors import QueueFull, Unauthorized, Unavailable, ValidationError
from perfgate.http.problems import (
    PROBLEM_TYPE,
    from_http_exception,
    from_perfgate_error,
    from_unexpected,
)


async def body_of(response: Response) -> dict[str, Any]:
    assert response.content_type == PROBLEM_TYPE
    assert response.headers["Cache-Control"] == "no-store"
    doc: dict[str, Any] = json.loads(await response.get_data())
    assert doc["type"] == f"https://perfgate.dev/problems/{doc['code']}"
    assert doc["status"] == response.status_code
    return doc


async def test_a_perfgate_error_keeps_its_status_code_and_fields() -> None:
    response = from_perfgate_error(ValidationError("args.n must be an integer", field="args.n"))
    doc = await body_of(response)
    assert response.status_code == 422
    assert doc == {
        "type": "https://perfgate.dev/problems/invalid",
        "title": "Invalid fields",
        "status": 422,
        "detail": "args.n must be an integer",
        "code": "invalid",
        "field": "args.n",
    }
    assert "Retry-After" not in response.headers


@pytest.mark.parametrize(
    ("retry_after_s", "header"), [(0.2, "1"), (1.0, "1"), (2.01, "3"), (0, "1")]
)
async def test_back_pressure_says_when_to_retry_in_whole_seconds(
    retry_after_s: float, header: str
) -> None:
    for error in (
        QueueFull("full", retry_after_s=retry_after_s),
        Unavailable("down", retry_after_s=retry_after_s),
    ):
        response = from_perfgate_error(error)
        assert response.headers["Retry-After"] == header
        await body_of(response)


async def test_a_401_names_the_scheme() -> None:
    response = from_perfgate_error(Unauthorized("a bearer token is required"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="perfgate"'


async def test_a_405_lists_the_allowed_methods() -> None:
    response = from_http_exception(MethodNotAllowed(valid_methods=["POST", "GET"]))
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert (await body_of(response))["code"] == "method_not_allowed"


async def test_http_errors_get_stable_codes() -> None:
    too_large = from_http_exception(RequestEntityTooLarge())
    doc = await body_of(too_large)
    assert (doc["code"], doc["detail"]) == (
        "too_large",
        "request body is over the configured max_body_bytes",
    )
    assert (await body_of(from_http_exception(NotFound())))["code"] == "not_found"
    assert (await body_of(from_http_exception(Gone())))["code"] == "http_410"


async def test_an_unexpected_error_is_logged_and_reveals_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="perfgate.http")
    response = from_unexpected(KeyError("secret-token-value"))
    doc = await body_of(response)
    assert response.status_code == 500
    assert doc["code"] == "internal"
    assert "secret" not in json.dumps(doc)
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is KeyError
