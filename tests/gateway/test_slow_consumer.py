"""Backpressure: a client that reads nothing while 20 MB is published.

The gateway runs in its own process so that its RSS can be measured apart from the
clients. Expected: the server's memory stays bounded by the byte budget (not by what was
published), the slow client is closed with 4008, and a reading client gets everything.
"""

import json
import subprocess
import sys
from collections.abc import AsyncIterator

import psutil
import pytest
import trio

from tests.gateway.conftest import eventually
from tests.gateway.wsclient import Client

MESSAGE_BYTES = 64_000
MESSAGES = 320  # about 20 MB


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, psutil.Process]]:
    settings = {
        "queue_bytes": 1_000_000,
        "slow_consumer_grace_s": 0.5,
        "history_size": 4,
        "max_message_bytes": 256_000,
        "close_timeout_s": 30,
        "batch_window_ms": 0,
        "rate_limit_per_s": 0,
        "heartbeat_min_s": 30,
        "heartbeat_max_s": 30,
        "pong_timeout_s": 30,
    }
    argv = [sys.executable, "-m", "perfgate.gateway"]
    for key, value in settings.items():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    proc = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = b""
        with trio.fail_after(20):
            while not line.endswith(b"\n"):
                line += await proc.stdout.receive_some(4096)
        yield json.loads(line)["url"], psutil.Process(proc.pid)
    finally:
        proc.terminate()
        with trio.move_on_after(10):
            await proc.wait()
        proc.kill()
        await proc.wait()


async def test_slow_consumer_is_cut_off_and_memory_stays_bounded(
    server: tuple[str, psutil.Process],
) -> None:
    url, process = server
    slow = await Client.connect(url, max_queue=2, rcvbuf=65536)
    fast = await Client.connect(url, max_size=2**20)
    publisher = await Client.connect(url)
    for client in (slow, fast, publisher):
        await client.recv()
    await slow.request({"op": "subscribe", "id": 1, "channel": "firehose"})
    await fast.request({"op": "subscribe", "id": 1, "channel": "firehose"})
    baseline = process.memory_info().rss
    peak = baseline
    received: list[dict] = []
    done = trio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            await trio.sleep(0.02)

    async def read_fast() -> None:
        received.extend(await fast.messages(MESSAGES, wait_s=30))

    blob = "x" * MESSAGE_BYTES
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        nursery.start_soon(read_fast)
        for i in range(MESSAGES):
            reply = await publisher.request(
                {"op": "publish", "id": i, "channel": "firehose", "data": {"i": i, "b": blob}}
            )
            assert reply["type"] == "ack"
            # Spread over about two seconds: the kernel's socket buffers (autotuned, several
            # MB) fill first, then the queue stays over budget for longer than the grace.
            await trio.sleep(0.006)
        await eventually(lambda: len(received) >= MESSAGES, 30)
        done.set()

    # The reading client was not held back by the slow one: everything, in order.
    assert [m["data"]["i"] for m in received] == list(range(MESSAGES))
    growth_mb = (peak - baseline) / 2**20
    published_mb = MESSAGES * MESSAGE_BYTES / 2**20
    assert published_mb > 19
    assert growth_mb < 12, f"server RSS grew {growth_mb:.1f} MiB for {published_mb:.0f} MiB"
    # The slow client now reads: it finds a gap (drops), then the 4008 close.
    offsets = []
    code = None
    with trio.fail_after(30):
        while True:
            try:
                frame = await slow.recv(wait_s=20)
            except Exception as exc:
                code = getattr(getattr(exc, "rcvd", None), "code", None)
                break
            offsets.append(frame["offset"])
    assert code == 4008
    assert offsets and len(offsets) < MESSAGES / 2
    # What it got is a prefix: the rest was dropped (the client sees the offsets stop
    # short of the channel's head), and nothing was reordered.
    assert offsets == list(range(1, len(offsets) + 1))
    assert (await publisher.request({"op": "ping", "id": "after"}))["type"] == "ack"
    for client in (fast, publisher):
        await client.close()
