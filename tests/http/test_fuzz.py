"""Whatever a client sends to ``POST /v1/jobs``, the answer is never a 5xx (hypothesis)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import start_server, stop_server

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
field_names = st.sampled_from(
    ["task", "args", "priority", "timeout_s", "max_retries", "idempotency_key", "extra"]
)
task_names = st.sampled_from(["echo", "sleep", "sha256", "nope", "", "ECHO"])
submits = st.one_of(
    json_values,
    st.dictionaries(field_names, json_values, max_size=6),
    st.fixed_dictionaries(
        {"task": task_names},
        optional={
            "args": st.dictionaries(st.text(max_size=10), json_values, max_size=4),
            "priority": st.one_of(st.sampled_from(["high", "normal", "low"]), json_values),
            "timeout_s": st.one_of(st.floats(allow_nan=False, allow_infinity=False), json_values),
            "max_retries": json_values,
            "idempotency_key": st.one_of(st.text(max_size=20), json_values),
        },
    ),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    proc, ready = start_server(tmp, env={"PERFGATE_POOL_MAX_QUEUE": "50"})
    yield ready
    code, err = stop_server(proc)
    assert code == 0, err
    assert "unhandled error" not in err


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=submits)
def test_random_json_is_never_a_server_error(server: dict[str, Any], body: Any) -> None:
    response = httpx.post(
        server["http"] + "/v1/jobs",
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == response.status_code


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_random_bytes_are_never_a_server_error(server: dict[str, Any], raw: bytes) -> None:
    response = httpx.post(
        server["http"] + "/v1/jobs",
        content=raw,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code < 500, response.text
