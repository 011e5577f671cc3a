"""A real server forgets one-off channels once their history expires. ``perfgate serve`` as a
user runs it.

Issue 19's bar: 10,000 one-off channels leave the server within 10 MB of its baseline (they
used to grow it by 24 MB for good), i.e. under 1 KB per channel. HTTP publishes cost a few ms
each on a loaded 2-core machine, so this publishes fewer and holds them to the same rate."""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from tests.helpers import start_server, stop_server

HISTORY_TTL_S = 0.5
CLIENTS = 4
CHANNELS = 3000
#: The server's own channels ($sys:stats, $sys:alerts), published to every second.
SYSTEM_CHANNELS = 2
BAR_BYTES_PER_CHANNEL = 10_000_000 / 10_000


def publish_one_off(base: str, prefix: str, count: int) -> None:
    host, port = base.removeprefix("http://").rsplit(":", 1)

    def publish(worker: int) -> None:
        # http.client, not httpx: the client shares the machine, and it costs a third.
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            for i in range(worker, count, CLIENTS):
                body = json.dumps({"data": {"i": i}})
                headers = {"Content-Type": "application/json"}
                conn.request("POST", f"/v1/channels/{prefix}-{i}/messages", body, headers)
                reply = conn.getresponse()
                text = reply.read()
                assert reply.status == 202, text
        finally:
            conn.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(publish, range(CLIENTS)))


def hub_channels(base: str) -> int:
    stats = httpx.get(base + "/v1/stats", timeout=10).json()
    return int(stats["gateway"]["hub"]["channels"])


def settle(base: str) -> None:
    deadline = time.monotonic() + 10
    while hub_channels(base) > SYSTEM_CHANNELS and time.monotonic() < deadline:
        time.sleep(HISTORY_TTL_S / 2)


def test_one_off_channels_leave_the_server_near_its_baseline(tmp_path: Path) -> None:
    proc, ready = start_server(tmp_path, env={"PERFGATE_GATEWAY_HISTORY_TTL_S": str(HISTORY_TTL_S)})
    try:
        base = ready["http"]
        server = psutil.Process(proc.pid)
        publish_one_off(base, "warm", 1000)  # warm up connections, caches and arenas
        settle(base)
        baseline = server.memory_info().rss
        publish_one_off(base, "once", CHANNELS)
        held = hub_channels(base)
        settle(base)
        assert hub_channels(base) <= SYSTEM_CHANNELS, f"of {held} channels, some still held"
        # Job channels too are released once the job is over and its history expired.
        jobs = [
            httpx.post(base + "/v1/jobs", json={"task": "sleep", "args": {"seconds": 0}}).json()
            for _ in range(5)
        ]
        for job in jobs:
            done = httpx.get(f"{base}/v1/jobs/{job['id']}?wait=20", timeout=30).json()
            assert done["state"] == "succeeded"
        settle(base)
        assert hub_channels(base) <= SYSTEM_CHANNELS
        growth = server.memory_info().rss - baseline
        assert growth < CHANNELS * BAR_BYTES_PER_CHANNEL, (
            f"{CHANNELS} one-off channels left the server {growth / 1e6:.1f} MB up"
        )
    finally:
        code, err = stop_server(proc)
    assert code == 0, err
