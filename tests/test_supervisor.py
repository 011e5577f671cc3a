"""The whole service in-process: start, serve HTTP and WebSocket, stop, leave nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psutil
import trio

from perfgate.supervisor import Supervisor
from tests.conftest import make_config
from tests.gateway.wsclient import Client, ConnectionClosed
from tests.helpers import all_tasks


def listening_ports() -> set[int]:
    return {
        c.laddr.port
        for c in psutil.Process().net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }


async def test_cancelling_the_service_leaves_no_task_socket_or_child(tmp_path: Path) -> None:
    tasks_before = len(all_tasks())
    ports_before = listening_ports()
    async with trio.open_nursery() as nursery:
        supervisor = Supervisor(make_config(tmp_path), handle_signals=False)
        bound = await nursery.start(supervisor.run)
        async with httpx.AsyncClient() as http:
            assert (await http.get(bound.http + "/healthz")).json() == {"status": "ok"}
        ws = await Client.connect(bound.ws)
        welcome = await ws.recv()
        assert welcome["type"] == "welcome" and welcome["session"] and welcome["heartbeat_s"] > 0
        assert (await ws.request({"op": "ping", "id": 7}))["id"] == 7
        assert psutil.Process().children(), "the pool keeps warm workers"
        assert len(listening_ports() - ports_before) == 2
        nursery.cancel_scope.cancel()
    assert len(all_tasks()) == tasks_before
    assert listening_ports() == ports_before
    live = [p for p in psutil.Process().children(recursive=True) if p.status() != "zombie"]
    assert live == []
    try:
        await ws.recv(wait_s=5)
        raise AssertionError("the socket should be closed")
    except ConnectionClosed:
        pass


async def test_graceful_stop_finishes_long_polls_and_closes_websockets_1001(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        supervisor = Supervisor(make_config(tmp_path), handle_signals=False)
        bound = await nursery.start(supervisor.run)
        ws = await Client.connect(bound.ws)
        await ws.recv()
        async with httpx.AsyncClient(timeout=20) as http:
            job = (
                await http.post(
                    bound.http + "/v1/jobs", json={"task": "sleep", "args": {"seconds": 30}}
                )
            ).json()
            results: dict[str, Any] = {}
            answered = trio.Event()

            async def long_poll() -> None:
                response = await http.get(f"{bound.http}/v1/jobs/{job['id']}?wait=20")
                results["status"] = response.status_code
                results["state"] = response.json()["state"]
                answered.set()

            nursery.start_soon(long_poll)
            await trio.sleep(0.5)
            supervisor.request_stop()
            with trio.fail_after(15):
                await answered.wait()
        # The in-flight long-poll was answered (with the job as it was), not cut off.
        assert results["status"] == 200
        assert results["state"] in ("queued", "running")
        try:
            while True:
                await ws.recv(wait_s=10)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1001
    assert supervisor.readiness.phase.value == "stopped"
