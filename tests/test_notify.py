"""systemd readiness (sd_notify): READY=1 once everything is ready, STOPPING=1 when the drain
begins, over a stand-in for systemd's NOTIFY_SOCKET (a unix datagram socket, by path or
abstract name) and a real ``perfgate serve``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from perfgate.bench.server import perfgate_argv
from perfgate.notify import READY, STOPPING, Notifier, socket_address


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("/run/systemd/notify", "/run/systemd/notify"),
        ("@/org/freedesktop/systemd1/notify/1", "\0/org/freedesktop/systemd1/notify/1"),
        ("", None),
        (None, None),
        ("vsock:2:1234", None),
    ],
)
def test_notify_socket_values(value: str | None, address: str | None) -> None:
    assert socket_address(value) == address


@pytest.fixture(params=["path", "abstract"])
def systemd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A stand-in for systemd's notification socket, and the NOTIFY_SOCKET value naming it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        value = str(tmp_path / "notify")
        sock.bind(value)
    else:
        value = f"@perfgate-test-{os.getpid()}-{time.monotonic_ns()}"
        sock.bind("\0" + value[1:])
    sock.settimeout(30)
    with sock:
        yield sock, value


def test_a_notification_reaches_the_socket(systemd: tuple[socket.socket, str]) -> None:
    sock, value = systemd
    environ = {"NOTIFY_SOCKET": value, "HOME": "/"}
    notifier = Notifier.from_environ(environ)
    assert environ == {"HOME": "/"}  # children do not inherit it
    notifier(READY)
    assert sock.recv(4096) == b"READY=1"


def test_without_a_socket_nothing_is_sent_and_nothing_fails(tmp_path: Path) -> None:
    Notifier.from_environ({})(READY)
    Notifier(str(tmp_path / "nobody-listens"))(READY)  # logged, never raised


def test_perfgate_serve_says_ready_when_ready_and_stopping_when_draining(
    systemd: tuple[socket.socket, str], tmp_path: Path
) -> None:
    sock, value = systemd
    ready_file = tmp_path / "ready.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFGATE_")}
    proc = subprocess.Popen(
        perfgate_argv(str(tmp_path / "data"), str(ready_file)),
        env={**env, "NOTIFY_SOCKET": value, "PERFGATE_POOL_MIN_WORKERS": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert sock.recv(4096) == b"READY=1"
        # Nothing is still starting once READY=1 has been sent.
        bound = json.loads(ready_file.read_text())
        assert httpx.get(bound["http"] + "/readyz").status_code == 200
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 2
        assert not [w for w in workers if "NOTIFY_SOCKET" in w.environ()]
        proc.send_signal(signal.SIGTERM)
        assert sock.recv(4096) == STOPPING.encode()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
