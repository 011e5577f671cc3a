"""A real ``redis-server`` on a free loopback port, for the tests that are about Redis.

One per test module (``redis_server`` fixture in tests/conftest.py): started with no
persistence in a temporary directory, stopped afterwards. Tests may stop and restart it
(same port) to exercise reconnection; ``flush`` gives each test a clean database.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command(port: int, *args: str, timeout_s: float = 2.0) -> bytes:
    """Send one inline command and return the first reply chunk (raises OSError if down)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall((" ".join(args) + "\r\n").encode())
        return sock.recv(65536)


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if _command(self.port, "PING").startswith(b"+PONG"):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("redis-server did not start")
            time.sleep(0.02)

    def stop(self, *, save: bool = False) -> None:
        """Stop the server; ``save=True`` writes dump.rdb first, so a restart keeps the data."""
        if self.proc is None:
            return
        if save:
            with contextlib.suppress(OSError):  # the server closes without a reply
                _command(self.port, "SHUTDOWN", "SAVE")
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, *, save: bool = False) -> None:
        self.stop(save=save)
        self.start()

    def flush(self) -> None:
        reply = _command(self.port, "FLUSHALL")
        assert reply.startswith(b"+OK"), reply
