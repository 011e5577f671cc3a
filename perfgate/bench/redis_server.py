"""A ``redis-server`` for the peers that need one (Celery, arq) and for perfgate's Redis mode.

The bench starts one per suite on a free loopback port, with no persistence, and every system
that uses Redis in that suite shares it (each on its own database number), so "perfgate on
Redis against Celery" is measured on the same server. Runs are interleaved, never
concurrent, so one system's load never lands on another's measurement.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
#: database numbers, one per system, so their keys never meet
DATABASES = {"celery": 0, "arq": 1, "perfgate-redis": 2}


class RedisUnavailable(Exception):
    """No ``redis-server`` on PATH, or it did not answer PING in time."""


def url_for(base_url: str, system: str) -> str:
    """``redis://h:p`` + the system's database number (pure)."""
    return f"{base_url.rstrip('/')}/{DATABASES.get(system, 0)}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _answers_ping(port: int) -> bool:
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return False
    async with stream:
        await stream.send_all(b"PING\r\n")
        return (await stream.receive_some(64)).startswith(b"+PONG")


@asynccontextmanager
async def redis_serving() -> AsyncIterator[str]:
    """Run ``redis-server`` for the ``with`` body; yields ``redis://127.0.0.1:PORT`` (no db).

    Raises :class:`RedisUnavailable` if it is not installed or not answering within
    :data:`START_TIMEOUT_S`. The stop (SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT_S`) is
    shielded from cancellation, so the server never outlives the block.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable("redis-server is not on PATH (the Redis peers need it)")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="perfgate-bench-redis-") as tmp:
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", tmp, "--databases", "16"]
        process = await trio.lowlevel.open_process(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            with trio.move_on_after(START_TIMEOUT_S) as waiting:
                while not await _answers_ping(port):
                    if process.returncode is not None:
                        raise RedisUnavailable(f"redis-server exited {process.returncode}")
                    await trio.sleep(0.02)
            if waiting.cancelled_caught:
                raise RedisUnavailable(f"redis-server not answering after {START_TIMEOUT_S:g}s")
            yield f"redis://127.0.0.1:{port}"
        finally:
            with trio.CancelScope(shield=True):
                process.terminate()
                with trio.move_on_after(STOP_TIMEOUT_S):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
