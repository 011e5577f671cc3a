"""perfgate.client under asyncio, and the blocking Client, against a server subprocess."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perfgate.client import (
    AsyncClient,
    Client,
    Invalid,
    JobCancelled,
    NotFound,
    PerfgateConnectionError,
    PerfgateTimeout,
)
from tests.helpers import start_server, stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    proc, ready = start_server(Path(tmp_path_factory.mktemp("client")))
    yield ready
    stop_server(proc)


def test_async_client_under_asyncio(server: dict[str, Any]) -> None:
    async def main() -> None:
        async with AsyncClient(server["http"], timeout_s=10) as client:
            job = await client.submit("echo", {"x": 1})
            assert await job.result(timeout=10) == {"x": 1}
            assert await client.run("echo", {"y": 2}) == {"y": 2}
            items = [{"i": i} for i in range(150)]
            assert await client.map("echo", items) == items
            with pytest.raises(Invalid) as info:
                await client.submit("echo", {"x": 1}, priority="urgent")
            assert [e["field"] for e in info.value.errors] == ["priority"]
            slow = await client.submit("sleep", {"seconds": 0.5, "steps": 5})
            kinds = [event.kind async for event in slow.events()]
            assert kinds[-3:] == ["progress", "result", "state"] and kinds.count("progress") == 5
            hanging = await client.submit("sleep", {"seconds": 30})
            with pytest.raises(PerfgateTimeout):
                await hanging.result(timeout=0.2)
            await hanging.cancel()
            with pytest.raises(JobCancelled):
                await hanging.result(timeout=10)

    asyncio.run(main())


def test_unreachable_under_asyncio() -> None:
    async def main() -> None:
        async with AsyncClient("http://127.0.0.1:9", timeout_s=1) as client:
            with pytest.raises(PerfgateConnectionError):
                await client.submit("echo")

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 5


def test_blocking_client(server: dict[str, Any]) -> None:
    with Client(server["http"], timeout_s=10) as client:
        job = client.submit("echo", {"x": 1})
        assert job.result(timeout=10) == {"x": 1}
        assert job.refresh()["state"] == "succeeded"
        assert client.run("echo", {"y": 2}) == {"y": 2}
        assert client.map("echo", ({"i": i} for i in range(20))) == [{"i": i} for i in range(20)]
        events = list(client.submit("sleep", {"seconds": 0.2, "steps": 2}).events())
        assert [e.offset for e in events] == list(range(1, len(events) + 1))
        assert events[-1].data["state"] == "succeeded"
        with pytest.raises(NotFound):
            client.job("no-such-job").refresh()
    # Without `with`: close() ends the loop thread.
    client = Client(server["http"], backend="asyncio")
    try:
        assert client.run("echo", {}) == {}
    finally:
        client.close()
    client.close()  # idempotent
