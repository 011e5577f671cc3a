"""Coalesced frame writes: the fast path exists, and frames arrive whole and in order."""

import trio

from perfgate.gateway._wire import fast_path_available, raw_frames_ok, send_texts
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
