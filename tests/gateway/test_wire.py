"""The gateway's write path: every byte through the GatewayStream it owns, frames whole.

The canary test names the versions its assumptions were checked against; pyproject.toml bounds
trio and trio-websocket to that range. If it fails after an upgrade, the fast path's
assumptions (see perfgate/gateway/_wire.py) must be checked again before the bound moves.
"""

import ast
import importlib.metadata
import pathlib
from typing import Any

import trio
from trio_websocket import WebSocketConnection, wrap_server_stream

from perfgate.gateway._wire import GatewayStream, close_frame, negotiated_extension
from perfgate.gateway.outbox import websocket_frame
from tests.gateway.wsclient import Client

CHECKED = {"trio": ("0.27", "0.35.0"), "trio-websocket": ("0.12.0", "0.12.2")}
"""The range pyproject.toml allows; these tests were run against the newest of each (trio
0.35.0, trio-websocket 0.12.2, wsproto 1.3.2, which the gateway no longer reads)."""


class Recording(GatewayStream):
    __slots__ = ("writes",)

    def __init__(self, transport: trio.SocketStream) -> None:
        super().__init__(transport)
        self.writes: list[bytes] = []

    async def send_all(self, data: Any) -> None:
        self.writes.append(bytes(data))
        await super().send_all(data)


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in importlib.metadata.version(name).split(".")[:3])


async def serve_one(
    nursery: trio.Nursery, handler: Any, stream_type: type[GatewayStream] = GatewayStream
) -> str:
    """A one-connection server on loopback that wraps the socket as the gateway does."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def serve() -> None:
        async with listeners[0] as listener:
            stream = await listener.accept()
        wire = stream_type(stream)
        async with trio.open_nursery() as inner:
            request = await wrap_server_stream(inner, wire)
            ws = await request.accept()
            await handler(ws, wire)
            inner.cancel_scope.cancel()

    nursery.start_soon(serve)
    return f"ws://127.0.0.1:{port}"


async def test_canary_the_fast_path_assumptions_hold_for_the_installed_versions(
    nursery: trio.Nursery,
) -> None:
    for name, (oldest, newest) in CHECKED.items():
        version = _version(name)
        assert _version_tuple(oldest) <= version <= _version_tuple(newest), (
            f"{name} {version} is outside the range the gateway's write path was checked "
            f"against ({oldest} .. {newest}): check perfgate/gateway/_wire.py's assumptions"
        )
    done = trio.Event()
    seen: dict[str, Any] = {}

    async def handler(ws: WebSocketConnection, wire: Recording) -> None:
        # The client offers permessage-deflate; trio-websocket accepts no extension, and
        # the stream learns it from the answer it wrote.
        seen["plain"] = wire.plain
        await ws.send_message("hello é")
        await ws.ping(b"1234")
        await ws.aclose(4000, "bye")
        seen["close_sent"] = wire.close_sent
        done.set()

    url = await serve_one(nursery, handler, Recording)
    client = await Client.connect(url, path="/", compression="deflate")
    assert await trio.to_thread.run_sync(client.ws.recv, 10) == "hello é"
    await done.wait()
    assert seen == {"plain": True, "close_sent": True}
    client_ws = client.ws
    await client.close()
    del client_ws


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


async def test_canary_trio_websocket_writes_one_whole_frame_per_send_all(
    nursery: trio.Nursery,
) -> None:
    done = trio.Event()
    writes: list[bytes] = []

    async def handler(ws: WebSocketConnection, wire: Recording) -> None:
        await ws.send_message("x" * 300)
        await ws.ping(b"abcd")
        await ws.aclose(4000, "bye")
        writes.extend(wire.writes)
        done.set()

    url = await serve_one(nursery, handler, Recording)
    client = await Client.connect(url, path="/")
    await trio.to_thread.run_sync(client.ws.recv, 10)
    await done.wait()
    await client.close()
    assert writes[0].startswith(b"HTTP/1.1 101") and negotiated_extension(writes[0]) is False
    # Each later write is exactly one frame, and the gateway builds the same bytes.
    assert writes[1] == websocket_frame("x" * 300)
    assert writes[2] == b"\x89\x04abcd"
    assert writes[3] == close_frame(4000, "bye")


def test_negotiated_extension_reads_the_answer() -> None:
    assert negotiated_extension(b"HTTP/1.1 400 Bad\r\n\r\n") is None
    plain = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    assert negotiated_extension(plain) is False
    deflate = plain[:-2] + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    assert negotiated_extension(deflate) is True


async def test_a_partial_inline_write_keeps_its_rest_ahead_of_every_other_frame(
    nursery: trio.Nursery,
) -> None:
    big = "x" * 4_000_000  # more than the socket buffers hold while the client sleeps
    outcome: list[object] = []
    checked = trio.Event()

    async def handler(ws: WebSocketConnection, wire: GatewayStream) -> None:
        left = wire.write_nowait(websocket_frame(big))
        outcome.append(left)
        assert left and wire.pending_bytes == left and not wire.idle
        # Busy: a second inline write is refused (the caller queues it) ...
        assert wire.write_nowait(websocket_frame("refused")) is None
        async with trio.open_nursery() as inner:
            # ... and trio-websocket's own frames (a message, a ping) wait behind the rest.
            inner.start_soon(ws.send_message, "after")
            inner.start_soon(ws.pong, b"pp")
            await trio.sleep(0.1)
            await wire.flush()
        assert wire.idle
        assert wire.write_nowait(websocket_frame("inline")) == 0
        checked.set()
        await trio.sleep_forever()

    url = await serve_one(nursery, handler)
    client = await Client.connect(url, path="/", max_size=2**23, rcvbuf=65536)
    await trio.sleep(0.3)  # not reading: the server's write cannot complete
    got = [await trio.to_thread.run_sync(client.ws.recv, 10) for _ in range(3)]
    assert got == [big, "after", "inline"]
    await checked.wait()
    assert isinstance(outcome[0], int) and outcome[0] > 0
    await client.close()


async def test_no_data_frame_follows_a_close_frame(nursery: trio.Nursery) -> None:
    done = trio.Event()
    seen: list[object] = []

    async def handler(ws: WebSocketConnection, wire: GatewayStream) -> None:
        with trio.move_on_after(0.2):
            await ws.aclose(4000, "bye")
        seen.append(wire.write_nowait(websocket_frame("late")))
        try:
            await wire.send_all(websocket_frame("late"))
        except trio.ClosedResourceError:
            seen.append("refused")
        done.set()

    url = await serve_one(nursery, handler)
    client = await Client.connect(url, path="/")
    await done.wait()
    assert seen == [None, "refused"]
    assert await client.wait_closed() == 4000


def test_no_module_assigns_another_objects_private_attribute() -> None:
    """The class of issue 16.1's bug: ``lock._owner = ...`` on trio's lock. Only an object's
    own code (``self._x = ...``, ``cls._x = ...``) may assign its private attributes."""
    root = pathlib.Path(__file__).parents[2] / "perfgate" / "gateway"
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                for t in ast.walk(target):
                    if (
                        isinstance(t, ast.Attribute)
                        and t.attr.startswith("_")
                        and not t.attr.startswith("__")
                        and not (isinstance(t.value, ast.Name) and t.value.id in ("self", "cls"))
                    ):
                        offenders.append(f"{path.relative_to(root)}:{t.lineno} .{t.attr}")
    assert offenders == []
