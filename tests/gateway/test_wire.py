"""Coalesced frame writes: the fast path exists, and frames arrive whole and in order."""

import trio

from perfgate.gateway._wire import (
    fast_path_available,
    finish_write,
    raw_frames_ok,
    send_texts,
    write_inline,
)
from perfgate.gateway.outbox import websocket_frame
from tests.gateway.wsclient import Client


async def test_fast_path_is_available_with_the_installed_trio_websocket(
    nursery: trio.Nursery,
) -> None:
    from trio_websocket import serve_websocket

    got: list[str] = []
    checked = trio.Event()

    async def handler(request):  # type: ignore[no-untyped-def]
        ws = await request.accept()
        assert fast_path_available(ws) and raw_frames_ok(ws)
        await send_texts(ws, [f"frame {i}" for i in range(500)])
        await send_texts(ws, ["single"])
        await send_texts(ws, [websocket_frame("raw é"), "text", websocket_frame("r" * 300)])
        checked.set()
        await trio.sleep_forever()

    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
    client = await Client.connect(f"ws://127.0.0.1:{server.port}", path="/")
    for _ in range(504):
        got.append(await trio.to_thread.run_sync(client.ws.recv, 10))
    assert got == [f"frame {i}" for i in range(500)] + ["single", "raw é", "text", "r" * 300]
    await checked.wait()
    await client.close()


async def test_a_partial_inline_write_holds_the_socket_until_its_rest_is_sent(
    nursery: trio.Nursery,
) -> None:
    from trio_websocket import serve_websocket

    big = "x" * 4_000_000  # more than the socket buffers hold while the client sleeps
    outcome: list[object] = []
    checked = trio.Event()

    async def handler(request):  # type: ignore[no-untyped-def]
        ws = await request.accept()
        me = trio.lowlevel.current_task()
        rest = write_inline(ws, websocket_frame(big), me)
        outcome.append(rest)
        assert rest  # partial: the rest is ours to send, and the stream lock is held for us
        async with trio.open_nursery() as inner:
            # Another writer (as a pong or a ping would) must wait for the rest.
            inner.start_soon(ws.send_message, "after")
            await trio.sleep(0.1)
            await finish_write(ws, rest)
        assert not ws._stream_lock.locked()
        assert write_inline(ws, websocket_frame("inline"), me) == b""
        checked.set()
        await trio.sleep_forever()

    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
    client = await Client.connect(
        f"ws://127.0.0.1:{server.port}", path="/", max_size=2**23, rcvbuf=65536
    )
    await trio.sleep(0.3)  # not reading: the server's write cannot complete
    got = [await trio.to_thread.run_sync(client.ws.recv, 10) for _ in range(3)]
    assert got == [big, "after", "inline"]
    await checked.wait()
    assert isinstance(outcome[0], bytes) and outcome[0]
    await client.close()
