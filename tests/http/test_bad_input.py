"""Bad input over real HTTP against an in-process service: a 4xx naming the field, never a
500, and nothing written (issue 19: items 3, 7 and 9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from perfgate.config import TaskArg, TaskConfig

JSON = {"Content-Type": "application/json"}

TASKS = {
    "ls": TaskConfig(name="ls", command=("ls", "{path}")),
    "sort": TaskConfig(name="sort", command=("sort", "{file}")),
    "out": TaskConfig(name="out", command=("echo", "--out={path}")),
    "flags": TaskConfig(name="flags", command=("echo", "{flag}", "{text}"), allow_options=True),
    "one_flag": TaskConfig(
        name="one_flag",
        command=("echo", "{flag}", "{text}"),
        args={"flag": TaskArg(allow_options=True, enum=("-n", "-e")), "text": TaskArg()},
    ),
    "resize": TaskConfig(
        name="resize",
        command=("echo", "{width}", "{mode}", "{name}"),
        args={
            "width": TaskArg(type="integer", minimum=1, maximum=100, required=True),
            "mode": TaskArg(enum=("fit", "fill"), default="fit"),
            "name": TaskArg(pattern="[a-z]+", max_length=8, required=True),
        },
    ),
}


@pytest.fixture
async def http(service_factory: Any) -> Any:
    service = await service_factory(tasks=TASKS)
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as client:
        yield client


async def _no_jobs(http: httpx.AsyncClient) -> None:
    assert (await http.get("/v1/jobs")).json()["jobs"] == []


def _fields(response: httpx.Response) -> set[str]:
    assert response.headers["Content-Type"] == "application/problem+json"
    return {e["field"] for e in response.json()["errors"]}


@pytest.mark.parametrize(
    ("task", "args", "field"),
    [
        ("ls", {"path": "--help"}, "args.path"),
        ("ls", {"path": "-la"}, "args.path"),
        ("ls", {"path": "-"}, "args.path"),
        ("ls", {"path": -1}, "args.path"),  # a number is substituted too
        ("sort", {"file": "-o/tmp/owned"}, "args.file"),
        ("out", {"path": "-x"}, "args.path"),  # inside a larger element as well
        ("ls", {"path": "a\x00b"}, "args.path"),
        ("ls", {"path": None}, "args.path"),
        ("ls", {"path": ["a"]}, "args.path"),
        ("ls", {"path": {"a": 1}}, "args.path"),
        ("ls", {}, "args.path"),
        ("ls", {"path": ".", "more": "x"}, "args.more"),
        ("one_flag", {"flag": "-n", "text": "-e"}, "args.text"),  # allowed per argument only
    ],
)
async def test_command_values_that_would_be_options_are_refused_at_submit(
    http: httpx.AsyncClient, task: str, args: dict[str, Any], field: str
) -> None:
    response = await http.post("/v1/jobs", json={"task": task, "args": args})
    assert response.status_code == 422, response.text
    assert field in _fields(response)
    assert response.json()["field"] == field
    await _no_jobs(http)


async def test_no_file_is_written_by_an_injected_option(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    target = tmp_path / "owned"
    response = await http.post("/v1/jobs", json={"task": "sort", "args": {"file": f"-o{target}"}})
    assert response.status_code == 422
    assert not target.exists()


async def test_a_task_may_allow_options(http: httpx.AsyncClient) -> None:
    for task in ("flags", "one_flag"):
        job = await http.post("/v1/jobs", json={"task": task, "args": {"flag": "-n", "text": "x"}})
        assert job.status_code == 202, job.text
        done = (await http.get(f"/v1/jobs/{job.json()['id']}?wait=20")).json()
        assert done["state"] == "succeeded"


async def test_declared_arguments_name_every_bad_field(http: httpx.AsyncClient) -> None:
    body = {"task": "resize", "args": {"width": 0, "mode": "stretch", "colour": "red"}}
    response = await http.post("/v1/jobs", json=body)
    assert response.status_code == 422
    assert _fields(response) == {"args.width", "args.mode", "args.colour", "args.name"}
    body = {"task": "resize", "args": {"width": "10", "name": "Bad\n"}}
    assert _fields(await http.post("/v1/jobs", json=body)) == {"args.width", "args.name"}
    await _no_jobs(http)


async def test_declared_defaults_and_integral_numbers(http: httpx.AsyncClient) -> None:
    job = await http.post("/v1/jobs", json={"task": "resize", "args": {"width": 5.0, "name": "a"}})
    assert job.status_code == 202, job.text
    assert job.json()["args"] == {"width": 5, "mode": "fit", "name": "a"}


async def test_builtin_python_tasks_declare_their_arguments(http: httpx.AsyncClient) -> None:
    body = {"task": "sleep", "args": {"seconds": -1, "steps": "many", "bogus": 1}}
    response = await http.post("/v1/jobs", json=body)
    assert response.status_code == 422
    assert _fields(response) == {"args.seconds", "args.steps", "args.bogus"}
    body = {"task": "sha256", "args": {"data": 1, "rounds": 0}}
    assert _fields(await http.post("/v1/jobs", json=body)) == {"args.data", "args.rounds"}
    await _no_jobs(http)


@pytest.mark.parametrize(
    "body",
    [
        b'{"task": "echo", "args": {"x": NaN}}',
        b'{"task": "echo", "args": {"x": [Infinity]}}',
        b'{"task": "echo", "args": {"x": -1e999}}',
        b'{"task": "echo", "args": {"x": "\\ud800"}}',
        b'{"task": "echo", "args": {"x": {"\\udc00": 1}}}',
        b'{"task": "echo", "args": {"x": 1}, "idempotency_key": "k\\ud800"}',
        b'{"task": "echo\\udfff"}',
        b'{"task": "echo", "args": {"x": ' + b"[" * 80 + b"]" * 80 + b"}}",
    ],
)
async def test_unencodable_job_bodies_are_400(http: httpx.AsyncClient, body: bytes) -> None:
    response = await http.post("/v1/jobs", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    await _no_jobs(http)


@pytest.mark.parametrize(
    "data",
    [b"NaN", b"Infinity", b"1e400", b'"\\ud800"', b'{"a": ["\\udfff"]}', b'{"\\ud800": 1}'],
)
async def test_unencodable_publish_is_400_and_leaves_no_gap(
    http: httpx.AsyncClient, data: bytes
) -> None:
    url = "/v1/channels/news/messages"
    response = await http.post(url, content=b'{"data": ' + data + b"}", headers=JSON)
    assert response.status_code == 400, response.text
    ok = await http.post(url, json={"data": "fine"})
    assert ok.status_code == 202 and ok.json()["offset"] == 1


@pytest.mark.parametrize("channel", ["news%0A", "news%0D%0A", "%0Anews", "news%00"])
async def test_channel_names_are_whole_strings(http: httpx.AsyncClient, channel: str) -> None:
    response = await http.post(f"/v1/channels/{channel}/messages", json={"data": 1})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("limit", ["²", "١٢", "0" * 5000 + "1", "1\n"])
async def test_query_integers_are_ascii_digits(http: httpx.AsyncClient, limit: str) -> None:
    response = await http.get("/v1/jobs", params={"limit": limit})
    assert response.status_code == 422, response.text
