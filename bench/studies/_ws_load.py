"""Load generator processes for the gateway benchmark (asyncio + `websockets`, so the same
harness drives perfgate and the peer).

    sub  URL CHANNEL N   N subscribers; on stdin "report" prints what arrived since the
                         last report; "quit" exits
    idle URL N           N connections that only read; "quit" exits
    pub  URL CHANNEL RATE SECONDS
                         RATE > 0: open loop, message i scheduled at start + i/RATE, its
                         scheduled time is in the message (coordinated omission stays
                         visible); RATE == 0: flood with at most 256 unacknowledged

Every message carries {"seq", "t"} (t: time.time() of the scheduled send).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CONNECT_CONCURRENCY = 64


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def open_many(url: str, n: int) -> list[ClientConnection]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> ClientConnection:
        async with gate:
            ws = await connect(
                url + "/ws", max_size=2**22, ping_interval=None, open_timeout=60, max_queue=64
            )
            await ws.recv()  # welcome
            return ws

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


class Tally:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.generation = getattr(self, "generation", 0) + 1
        self.received = 0
        self.frames = 0
        self.out_of_order = 0
        self.latencies_ms: list[float] = []
        self.first = 0.0
        self.last = 0.0


async def subscriber(ws: ClientConnection, channel: str, tally: Tally, sample: int) -> None:
    await ws.send(json.dumps({"op": "subscribe", "id": 1, "channel": channel}))
    last_seq = -1
    generation = tally.generation
    async for text in ws:
        now = time.time()
        frame = json.loads(text)
        kind = frame["type"]
        if kind == "message":
            messages = [frame]
        elif kind == "batch":
            messages = frame["messages"]
        else:
            continue
        tally.frames += 1
        if not tally.first:
            tally.first = now
        tally.last = now
        if generation != tally.generation:
            generation, last_seq = tally.generation, -1
        for message in messages:
            data = message["data"]
            seq = data["seq"]
            if seq <= last_seq:
                tally.out_of_order += 1
            last_seq = seq
            tally.received += 1
            if seq % sample == 0:
                tally.latencies_ms.append((now - data["t"]) * 1000)


async def run_sub(url: str, channel: str, n: int) -> None:
    conns = await open_many(url, n)
    tally = Tally()
    sample = 1
    tasks = [asyncio.create_task(subscriber(ws, channel, tally, sample)) for ws in conns]
    await asyncio.sleep(0.5)
    emit({"ready": len(conns)})
    lines = await stdin_lines()
    while True:
        line = (await lines.readline()).decode().strip()
        if line == "report":
            emit(
                {
                    "received": tally.received,
                    "frames": tally.frames,
                    "out_of_order": tally.out_of_order,
                    "first": tally.first,
                    "last": tally.last,
                    "latencies_ms": tally.latencies_ms,
                }
            )
            tally.reset()
        else:
            break
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


async def run_idle(url: str, n: int) -> None:
    conns = await open_many(url, n)
    emit({"ready": len(conns)})
    lines = await stdin_lines()
    await lines.readline()
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


async def run_pub(url: str, channel: str, rate: float, seconds: float) -> None:
    async with connect(url + "/ws", max_size=2**22, ping_interval=None) as ws:
        await ws.recv()
        acked = 0
        window = asyncio.Semaphore(256)

        async def read_acks() -> None:
            nonlocal acked
            async for _ in ws:
                acked += 1
                window.release()

        reader = asyncio.create_task(read_acks())
        start = time.time()
        end = start + seconds
        seq = 0
        max_lag = 0.0
        pad = "p" * 64
        while True:
            if rate > 0:
                scheduled = start + seq / rate
                if scheduled >= end:
                    break
                delay = scheduled - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    max_lag = max(max_lag, -delay)
            else:
                await window.acquire()
                scheduled = time.time()
                if scheduled >= end:
                    break
            data = {"seq": seq, "t": scheduled, "pad": pad}
            await ws.send(
                json.dumps({"op": "publish", "id": seq, "channel": channel, "data": data})
            )
            seq += 1
        sent_done = time.time()
        deadline = time.time() + 10
        while acked < seq and time.time() < deadline:  # noqa: ASYNC110 - a counter, bounded
            await asyncio.sleep(0.01)
        reader.cancel()
        emit(
            {
                "sent": seq,
                "acked": acked,
                "start": start,
                "seconds": sent_done - start,
                "max_lag_ms": max_lag * 1000,
            }
        )


def main() -> None:
    raise_fd_limit()
    mode, url, *rest = sys.argv[1:]
    if mode == "sub":
        asyncio.run(run_sub(url, rest[0], int(rest[1])))
    elif mode == "idle":
        asyncio.run(run_idle(url, int(rest[0])))
    elif mode == "pub":
        asyncio.run(run_pub(url, rest[0], float(rest[1]), float(rest[2])))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
