"""schemathesis against ``/openapi.json`` on a live server: no 5xx, and every response is one
the document declares (status, content type, headers, body schema).

Left out on purpose: ``positive_data_acceptance`` (a schema-valid cursor can still be a forged
one, 400) and ``use_after_free`` (``DELETE /v1/jobs/{id}`` cancels; the job stays readable).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import start_server, stop_server

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
    ]
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    # Warnings and errors only: nobody reads the server's stderr pipe until it stops, and a
    # thousand access lines would fill it and block the server.
    # Long-polls end well inside the client's request timeout, and the stop does not wait for
    # the long `sleep` jobs the fuzzer submits.
    env = {
        "PERFGATE_POOL_MAX_QUEUE": "50",
        "PERFGATE_SERVER_LOG_LEVEL": "warning",
        "PERFGATE_HTTP_MAX_WAIT_S": "2",
        "PERFGATE_POOL_DRAIN_TIMEOUT_S": "2",
    }
    proc, ready = start_server(tmp_path, env=env)
    yield ready
    code, err = stop_server(proc)
    assert code == 0, err[-4000:]
    assert "unhandled error" not in err


def test_schemathesis_finds_no_server_error_and_no_undeclared_response(
    server: dict[str, Any], tmp_path: Path
) -> None:
    st = [sys.executable, "-m", "schemathesis.cli"]
    result = subprocess.run(
        [
            *st,
            "run",
            server["http"] + "/openapi.json",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            "25",
            "--workers",
            "1",
            # A hang is a failure too (a keep-alive connection that never answered was one).
            "--request-timeout",
            "5",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SCHEMATHESIS_TELEMETRY": "false"},
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    with urllib.request.urlopen(server["http"] + "/openapi.json") as response:
        doc = json.load(response)
    # Every declared operation was exercised, but GET /openapi.json: schemathesis leaves out
    # the document it was loaded from.
    operations = sum(len(item) for item in doc["paths"].values()) - 1
    assert f"Tested: {operations}" in result.stdout
