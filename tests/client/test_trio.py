"""perfgate.client under trio, against a live in-process server."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import trio

from perfgate.client import (
    AsyncClient,
    Forbidden,
    Invalid,
    JobCancelled,
    JobDead,
    JobFailed,
    NotFound,
    PerfgateConnectionError,
    PerfgateTimeout,
    Unauthorized,
)
from perfgate.config import TaskConfig
from tests.client.proxy import CuttableProxy


async def test_submit_result_run_and_map(service: Any) -> None:
    async with AsyncClient(service.http, timeout_s=10) as client:
        job = await client.submit("echo", {"x": 1}, priority="high")
        assert await job.result(timeout=10) == {"x": 1}
        assert (await job.refresh())["state"] == "succeeded"
        assert await client.run("echo", {"y": 2}, timeout=10) == {"y": 2}
        items = [{"i": i} for i in range(250)]  # more than the WebSocket's pace and one batch
        assert await client.map("echo", items, timeout=30) == items


async def test_http_only_client(service: Any) -> None:
    async with AsyncClient(service.http, timeout_s=10, use_ws=False) as client:
        assert await (await client.submit("echo", {"x": 1})).result(timeout=10) == {"x": 1}
        assert await client.run("echo", {"z": [1]}, timeout=10) == {"z": [1]}
        assert await client.map("echo", [{"i": i} for i in range(120)]) == [
            {"i": i} for i in range(120)
        ]


async def test_jobs_that_end_badly_raise_typed_errors_with_the_servers_error(
    service_factory: Any,
) -> None:
    service = await service_factory(
        tasks={"fail": TaskConfig(name="fail", command=("false",))},
        pool={"retry_backoff_s": 0.01, "retry_backoff_max_s": 0.01},
    )
    async with AsyncClient(service.http, timeout_s=10) as client:
        failed = await client.submit("fail")
        with pytest.raises(JobFailed) as info:
            await failed.result(timeout=10)
        assert info.value.state == "failed" and not isinstance(info.value, JobDead)
        assert info.value.error["kind"] == "exit" and info.value.error["exit_code"] == 1
        assert info.value.job_id == failed.id

        dead = await client.submit("fail", max_retries=1)
        with pytest.raises(JobDead) as dead_info:
            await dead.result(timeout=10)
        assert dead_info.value.error["kind"] == "exit"

        slow = await client.submit("sleep", {"seconds": 30})
        assert (await slow.cancel())["id"] == slow.id
        with pytest.raises(JobCancelled):
            await slow.result(timeout=10)
        # map raises the first failure once all are done; with return_exceptions, in place
        got = await client.map("echo", [{}, {}], return_exceptions=True)
        assert got == [{}, {}]
        got = await client.map("fail", [None, None], return_exceptions=True)
        assert all(isinstance(g, JobFailed) for g in got)
        with pytest.raises(JobFailed):
            await client.map("fail", [None])


async def test_a_result_wait_times_out_and_the_job_goes_on(service: Any) -> None:
    async with AsyncClient(service.http, timeout_s=10) as client:
        job = await client.submit("sleep", {"seconds": 1.0})
        with pytest.raises(PerfgateTimeout), trio.fail_after(5):
            await job.result(timeout=0.2)
        assert await job.result(timeout=10) == {"slept_s": 1.0}


async def test_refused_calls_raise_the_problem(service_factory: Any) -> None:
    tokens = {"submit-token-1": ("submit", "subscribe"), "reader-token-1": ("subscribe",)}
    service = await service_factory(auth={"tokens": tokens})
    async with AsyncClient(service.http, timeout_s=10, token="submit-token-1") as client:
        with pytest.raises(Invalid) as info:
            await client.submit("no-such-task")
        assert info.value.status == 422
        assert [e["field"] for e in info.value.errors] == ["task"]
        with pytest.raises(Invalid):  # the same 422 whichever path: HTTP too
            await client.run("no-such-task")
        with pytest.raises(NotFound):
            await client.job("0123").refresh()
    for token, error in (
        ("wrong", Unauthorized),
        (None, Unauthorized),
        ("reader-token-1", Forbidden),
    ):
        async with AsyncClient(service.http, timeout_s=10, token=token) as client:
            with pytest.raises(error):
                await client.submit("echo")


async def test_an_unreachable_server_is_an_error_not_a_hang() -> None:
    # Nothing listens: refused at once.
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with trio.fail_after(5):
        async with AsyncClient(f"http://127.0.0.1:{port}", timeout_s=1) as client:
            with pytest.raises(PerfgateConnectionError):
                await client.submit("echo")
            with pytest.raises(PerfgateConnectionError):
                await client.job("x").result(timeout=1)
    # Something listens and never answers: the call's timeout.
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    silent_port = listeners[0].socket.getsockname()[1]
    async with listeners[0]:
        with trio.fail_after(5):
            async with AsyncClient(f"http://127.0.0.1:{silent_port}", timeout_s=0.3) as client:
                with pytest.raises(PerfgateTimeout):
                    await client.submit("echo")
                with pytest.raises(PerfgateTimeout):
                    await client.job("x").refresh()


async def test_events_survive_a_cut_connection_without_a_gap(service_factory: Any) -> None:
    proxy = CuttableProxy()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(proxy.run)
        # The client learns the gateway's address from GET /v1/info: point it at the proxy.
        service = await service_factory(gateway={"public_url": f"ws://127.0.0.1:{port}/ws"})
        host, _, gw_port = service.ws.removeprefix("ws://").rpartition(":")
        proxy.target = (host, int(gw_port))
        async with AsyncClient(service.http, timeout_s=10, use_ws=False) as client:
            job = await client.submit("sleep", {"seconds": 1.0, "steps": 20})
            seen = []
            with trio.fail_after(20):
                async with contextlib.aclosing(job.events()) as events:  # type: ignore[type-var]
                    async for event in events:
                        seen.append(event)
                        if len(seen) in (3, 9, 15):
                            proxy.cut()
        nursery.cancel_scope.cancel()
    assert proxy.accepted >= 4  # the first connection and one per cut
    assert [e.offset for e in seen] == list(range(1, len(seen) + 1))
    assert [e.data["fraction"] for e in seen if e.kind == "progress"] == [
        (i + 1) / 20 for i in range(20)
    ]
    assert seen[-1].kind == "state" and seen[-1].data["state"] == "succeeded"
    assert [e.data["result"] for e in seen if e.kind == "result"] == [{"slept_s": 1.0}]


async def test_info_tells_where_the_gateway_is(service_factory: Any) -> None:
    service = await service_factory(gateway={"public_url": "/ws"})
    async with AsyncClient(service.http, timeout_s=10) as client:
        info = await client.request("GET", "/v1/info")
        assert info["ws"] == "/ws" and info["version"]
        endpoint = await client.ws_endpoint()
        assert (endpoint.host, endpoint.path) == ("127.0.0.1", "/ws")
    plain = await service_factory()
    async with AsyncClient(plain.http, timeout_s=10) as client:
        assert (await client.request("GET", "/v1/info"))["ws"] == plain.ws + "/ws"


async def test_many_submits_in_flight_all_go_over_the_websocket(
    service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway paces submits by those in flight, not by its frame limit (100/s by
    # default): a client with hundreds in flight keeps them all on the WebSocket, pipelined,
    # instead of spilling the ones over the frame limit onto HTTP.
    async with AsyncClient(service.http, timeout_s=20) as client:
        http_calls: list[tuple[str, str]] = []
        request = client._http.request

        async def counted(method: str, path: str, **kwargs: Any) -> Any:
            http_calls.append((method, path))
            return await request(method, path, **kwargs)

        monkeypatch.setattr(client._http, "request", counted)
        results: list[Any] = [None] * 300

        async def one(i: int) -> None:
            results[i] = await (await client.submit("echo", {"i": i})).result(timeout=30)

        async with trio.open_nursery() as nursery:
            for i in range(300):
                nursery.start_soon(one, i)
        assert results == [{"i": i} for i in range(300)]
        assert await client.map("echo", [{"m": i} for i in range(300)], timeout=30) == [
            {"m": i} for i in range(300)
        ]
        assert http_calls == [("GET", "/v1/info")]
