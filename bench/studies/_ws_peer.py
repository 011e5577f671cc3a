"""The peer for the gateway benchmark: a broadcast server on the `websockets` library.

It speaks the same minimal protocol as perfgate's gateway (welcome; subscribe, publish and
ping with acks; message frames with per-channel offsets) and fans out with
``websockets.broadcast``, the library's own fan-out helper (one encode per message, no
per-connection backpressure). Prints ``{"url": ..., "pid": ...}`` once listening.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

channels: dict[str, set[ServerConnection]] = defaultdict(set)
offsets: dict[str, int] = defaultdict(int)


async def handler(ws: ServerConnection) -> None:
    joined: set[str] = set()
    await ws.send(json.dumps({"type": "welcome", "session": str(id(ws)), "heartbeat_s": 20}))
    try:
        async for text in ws:
            try:
                frame = json.loads(text)
            except ValueError:
                await ws.send(json.dumps({"type": "error", "id": None, "code": "bad_request"}))
                continue
            op, rid = frame.get("op"), frame.get("id")
            if op == "subscribe":
                name = frame["channel"]
                channels[name].add(ws)
                joined.add(name)
                reply = {"type": "ack", "id": rid, "channel": name, "offset": offsets[name]}
            elif op == "publish":
                name = frame["channel"]
                offsets[name] += 1
                message = {
                    "type": "message",
                    "channel": name,
                    "offset": offsets[name],
                    "data": frame["data"],
                }
                broadcast(channels[name], json.dumps(message))
                reply = {"type": "ack", "id": rid, "channel": name, "offset": offsets[name]}
            else:
                reply = {"type": "ack", "id": rid}
            await ws.send(json.dumps(reply))
    except ConnectionClosed:
        pass  # a client process quitting mid-run
    finally:
        for name in joined:
            channels[name].discard(ws)


async def main() -> None:
    host, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0").rsplit(":", 1)
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(handler, host, int(port), ping_interval=20, max_size=2**20) as server:
        bound = next(iter(server.sockets)).getsockname()
        print(json.dumps({"url": f"ws://{host}:{bound[1]}", "pid": os.getpid()}), flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
