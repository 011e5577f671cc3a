"""The 503 window: while the service drains, the HTTP listener stays open and tells clients.

Real loopback sockets: a kept-alive connection gets ``Connection: close`` and is then closed,
a new connection gets 503 with ``Retry-After`` for work, reads and long-polls are answered,
and the listener closes only when the drain ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h11
import httpx
import trio

from perfgate.readiness import Phase
from perfgate.supervisor import Supervisor
from tests.conftest import make_config


class RawConnection:
    """One HTTP/1.1 connection, kept alive, driven by h11: we see its headers and its EOF."""

    def __init__(self, stream: trio.SocketStream, host: str) -> None:
        self.stream = stream
        self.host = host
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, url: str) -> RawConnection:
        host, _, port = url.removeprefix("http://").rpartition(":")
        return cls(await trio.open_tcp_stream(host, int(port)), f"{host}:{port}")

    async def request(self, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
        if self.conn.our_state is h11.DONE:
            self.conn.start_next_cycle()
        headers = [("Host", self.host), ("Content-Length", "0")]
        await self.stream.send_all(
            self.conn.send(h11.Request(method=method, target=target, headers=headers))
        )
        await self.stream.send_all(self.conn.send(h11.EndOfMessage()))
        status, found, body = 0, {}, b""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                found = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return status, found, body

    async def closed_by_server(self) -> bool:
        with trio.fail_after(10):
            return await self.stream.receive_some(1) == b""


async def until_phase(supervisor: Supervisor, phase: Phase) -> None:
    with trio.fail_after(10):
        while supervisor.readiness.phase is not phase:  # noqa: ASYNC110
            await trio.sleep(0.01)


async def refused(url: str) -> bool:
    host, _, port = url.removeprefix("http://").rpartition(":")
    try:
        stream = await trio.open_tcp_stream(host, int(port))
    except OSError:
        return True
    await stream.aclose()
    return False


async def test_while_draining_the_listener_answers_503_and_closes_kept_alive_connections(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, pool={"drain_timeout_s": 30.0})
    supervisor = Supervisor(config, handle_signals=False)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(supervisor.run)
        api = bound.http
        async with httpx.AsyncClient(timeout=20) as http:
            # A running job keeps the drain open until we cancel it.
            body = {"task": "sleep", "args": {"seconds": 60, "steps": 60}}
            job = (await http.post(api + "/v1/jobs", json=body)).json()
            kept = await RawConnection.open(api)
            status, headers, _ = await kept.request("GET", "/healthz")
            assert status == 200 and headers.get("connection") != "close"

            supervisor.request_stop()
            await until_phase(supervisor, Phase.DRAINING)

            # The kept-alive connection is answered, told to close, and closed.
            status, headers, _ = await kept.request("GET", f"/v1/jobs/{job['id']}")
            assert status == 200 and headers["connection"] == "close"
            assert await kept.closed_by_server()

            # New connections are accepted and told: not ready, no new work, come back later.
            readyz = await http.get(api + "/readyz")
            assert readyz.status_code == 503 and readyz.headers["Retry-After"] == "1"
            assert readyz.json() == {"status": "draining"}
            assert readyz.headers["Connection"] == "close"
            submit = await http.post(api + "/v1/jobs", json={"task": "sleep", "args": {}})
            assert submit.status_code == 503 and "Retry-After" in submit.headers
            assert submit.headers["Content-Type"] == "application/problem+json"
            publish = await http.post(api + "/v1/channels/news/messages", json={"data": 1})
            assert publish.status_code == 503 and "Retry-After" in publish.headers
            assert publish.headers["Content-Type"] == "application/problem+json"
            # Reads and long-polls are served (a long-poll answers with the job as it is).
            with trio.fail_after(5):
                polled = await http.get(f"{api}/v1/jobs/{job['id']}?wait=20")
            assert polled.status_code == 200 and polled.json()["state"] == "running"
            listed = await http.get(api + "/v1/jobs")
            assert listed.status_code == 200 and job["id"] in [
                j["id"] for j in listed.json()["jobs"]
            ]
            assert not await refused(api)

            # Cancelling the last job ends the drain; then the listener closes.
            cancelled = await http.delete(f"{api}/v1/jobs/{job['id']}")
            assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        with trio.fail_after(20):
            while not await refused(api):  # noqa: ASYNC110
                await trio.sleep(0.05)
    assert supervisor.readiness.phase is Phase.STOPPED


async def test_a_long_poll_in_flight_when_the_drain_begins_is_answered_with_connection_close(
    tmp_path: Path,
) -> None:
    supervisor = Supervisor(make_config(tmp_path), handle_signals=False)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(supervisor.run)
        async with httpx.AsyncClient(timeout=20) as http:
            body = {"task": "sleep", "args": {"seconds": 2, "steps": 2}}
            job = (await http.post(bound.http + "/v1/jobs", json=body)).json()
        kept = await RawConnection.open(bound.http)
        answer: dict[str, Any] = {}

        async def long_poll() -> None:
            answer["reply"] = await kept.request("GET", f"/v1/jobs/{job['id']}?wait=20")

        async with trio.open_nursery() as polls:
            polls.start_soon(long_poll)
            await trio.sleep(0.3)
            supervisor.request_stop()
        status, headers, _ = answer["reply"]
        assert status == 200 and headers["connection"] == "close"
        assert await kept.closed_by_server()
