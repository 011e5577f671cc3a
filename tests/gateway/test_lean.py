"""Issue 16.2, lean connections: an idle connection is two tasks and no nursery of its own
(its handler, reading, and trio-websocket's reader), in the gateway's shared nursery. What
that structure must still do without a per-connection nursery to cancel: contain a task's
failure, end a heartbeat probe and the submits still in flight when the connection ends."""

from __future__ import annotations

import errno
import gc
import logging
from typing import Any

import pytest
import trio
import trio_websocket
from trio_websocket import wrap_server_stream

from perfgate.gateway import Gateway
from perfgate.gateway.jobs import SUBMIT_SETTLE_S
from perfgate.gateway.stats import GatewayStats
from perfgate.gateway.tasks import ConnectionTasks
from perfgate.store import JobRecord
from tests.gateway.conftest import Start, eventually
from tests.gateway.wsclient import Client, RawClient
from tests.helpers import all_tasks


def named(name: str) -> list[trio.lowlevel.Task]:
    return [task for task in all_tasks() if task.name == name]


async def test_an_idle_connection_is_two_tasks_and_no_nursery(start_gateway: Start) -> None:
    gateway, url = await start_gateway()
    clients = [await Client.connect(url) for _ in range(3)]
    for client in clients:
        assert (await client.recv())["type"] == "welcome"
        reply = await client.request({"op": "subscribe", "id": 1, "channel": "c"})
        assert reply["type"] == "ack"
    await eventually(lambda: len(named("gateway.connection")) == 3)
    handlers = named("gateway.connection")
    readers = named("gateway.websocket-reader")
    assert len(readers) == 3
    # No nursery of their own: both kinds sit in the gateway's one connections nursery.
    assert all(not task.child_nurseries for task in handlers + readers)
    assert len({task.parent_nursery for task in handlers + readers}) == 1
    # The handshake's WebSocketRequest is not kept alive by the handler's frame.
    # type(), not isinstance(): gc.get_objects() may hold dead weak proxies from other tests.
    request_type = trio_websocket.WebSocketRequest
    assert not [obj for obj in gc.get_objects() if type(obj) is request_type]
    for client in clients:
        await client.close()
    await eventually(lambda: not named("gateway.connection"))
    await eventually(lambda: not named("gateway.websocket-reader"))
    assert gateway.stats()["internal_errors"] == 0


async def test_a_probe_out_when_the_peer_vanishes_ends_with_the_connection(
    start_gateway: Start,
) -> None:
    """trio-websocket never wakes a ping whose connection is gone; with no per-connection
    nursery to cancel, the connection's cleanup cancels the probe (no timeout counted)."""
    gateway, url = await start_gateway(
        heartbeat_min_s=0.05, heartbeat_max_s=0.1, pong_timeout_s=60.0
    )
    silent = await RawClient.connect(url)  # never answers pings
    await read_until_ping(silent)  # so the probe is out, waiting for its pong
    assert len(named("gateway.ping")) == 1
    silent.abort()
    await eventually(lambda: gateway.stats()["connections"] == 0)
    await eventually(lambda: not named("gateway.ping"))  # not after 60 s
    assert gateway.stats()["heartbeat"]["timeouts"] == 0


async def read_until_ping(client: RawClient) -> None:
    data = b""
    with trio.fail_after(10):
        while True:
            data += await client.sock.recv(65536)
            while len(data) >= 2 and len(data) >= 2 + (data[1] & 0x7F):
                if data[0] & 0x0F == 0x9:
                    return
                data = data[2 + (data[1] & 0x7F) :]


class StuckJobs:
    """A job service whose submits never finish; notes when one is cancelled."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0

    async def submit(
        self, body: Any, *, tenant: str, job_id: str | None = None
    ) -> tuple[JobRecord, bool]:
        self.started += 1
        try:
            await trio.sleep_forever()
        finally:
            self.cancelled += 1


async def test_a_submit_still_in_flight_ends_with_its_connection(start_gateway: Start) -> None:
    gateway, url = await start_gateway()
    jobs = StuckJobs()
    gateway.jobs = jobs
    client = await Client.connect(url)
    assert (await client.recv())["type"] == "welcome"
    await client.send({"op": "submit", "id": 1, "task": "echo"})
    await eventually(lambda: jobs.started == 1)
    await client.close()
    # Given SUBMIT_SETTLE_S to finish, then cancelled: not left running in the shared nursery.
    await eventually(lambda: jobs.cancelled == 1, limit_s=SUBMIT_SETTLE_S + 10)
    await eventually(lambda: gateway.stats()["connections"] == 0)
    assert gateway.stats()["internal_errors"] == 0


async def test_connection_tasks_contain_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    stats = GatewayStats()
    done = trio.Event()

    async def fails() -> None:
        raise RuntimeError("boom")

    async def sibling() -> None:
        await trio.sleep(0.05)
        done.set()

    with caplog.at_level(logging.ERROR, logger="perfgate.gateway"):
        async with trio.open_nursery() as nursery:
            tasks = ConnectionTasks(nursery, stats)
            tasks.start_soon(fails, name="gateway.writer")
            tasks.start_soon(sibling)
    assert done.is_set()  # the shared nursery was not cancelled
    assert stats.internal_errors == 1
    assert "boom" in caplog.text


async def test_trio_websocket_only_starts_its_reader_on_the_nursery_it_is_given(
    nursery: trio.Nursery,
) -> None:
    """Canary (trio-websocket 0.12): ConnectionTasks stands in for wrap_server_stream's
    nursery, which must only be used for ``start_soon``."""
    assert trio_websocket.__version__.startswith("0.12.")
    calls: list[str] = []

    class OnlyStartSoon:
        __slots__ = ()

        def start_soon(self, async_fn: Any, *args: Any, name: Any = None) -> None:
            calls.append(getattr(async_fn, "__name__", "?"))
            nursery.start_soon(async_fn, *args)

    server_stream, client_stream = trio.testing.memory_stream_pair()
    request_box: list[Any] = []

    async def serve() -> None:
        request = await wrap_server_stream(OnlyStartSoon(), server_stream)  # type: ignore[arg-type]
        request_box.append(request)
        ws = await request.accept()
        await ws.aclose()

    nursery.start_soon(serve)
    await client_stream.send_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    reply = await client_stream.receive_some()
    assert reply.startswith(b"HTTP/1.1 101")
    assert calls == ["_reader_task"]


class FlakyListener:
    """accept() fails with ``error`` once, then blocks."""

    def __init__(self, error: int) -> None:
        self.error = error
        self.calls = 0

    async def __aenter__(self) -> FlakyListener:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def accept(self) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise OSError(self.error, "accept failed")
        await trio.sleep_forever()


async def test_accept_retries_when_out_of_descriptors(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    listener = FlakyListener(errno.EMFILE)
    gateway = Gateway.__new__(Gateway)  # only _accept is exercised
    nursery.start_soon(gateway._accept, listener, nursery)
    await trio.sleep(1)
    assert listener.calls == 2
    nursery.cancel_scope.cancel()


async def test_accept_raises_other_errors(autojump_clock: trio.testing.MockClock) -> None:
    listener = FlakyListener(errno.EBADF)
    gateway = Gateway.__new__(Gateway)
    with pytest.raises(OSError):
        await gateway._accept(listener, None)  # type: ignore[arg-type]
