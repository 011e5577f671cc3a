"""``perfgate serve`` as a user runs it: a real subprocess, real signals, real config files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from perfgate.bench.server import perfgate_argv
from tests.helpers import PYTHON, start_server, stop_server


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "perfgate", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env=env,
    )


@pytest.mark.parametrize(
    ("args", "file_text", "fragment"),
    [
        (["serve", "--http", "localhost"], None, "expected HOST:PORT"),
        (["serve", "--http", "0.0.0.0:0"], None, "not loopback"),
        (["serve", "--config", "missing.toml"], None, "config file not found"),
        (["serve", "--config", "perfgate.toml"], "[pool]\nmax_workers = -1\n", "max_workers"),
        (["serve", "--config", "perfgate.toml"], "[http]\nport = 80\n", "unknown key"),
        (["serve", "--config", "perfgate.toml"], "not = [toml", "invalid TOML"),
        (["serve", "--no-such-flag"], None, "unrecognized arguments"),
    ],
)
def test_bad_config_exits_2_with_one_line(
    tmp_path: Path, args: list[str], file_text: str | None, fragment: str
) -> None:
    if file_text is not None:
        (tmp_path / "perfgate.toml").write_text(file_text)
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_bind_in_use_is_one_line(tmp_path: Path) -> None:
    proc, ready = start_server(tmp_path)
    try:
        port = ready["http"].rsplit(":", 1)[1]
        result = run_cli(
            "serve", "--http", f"127.0.0.1:{port}", "--ws", "127.0.0.1:0", cwd=tmp_path
        )
        assert result.returncode == 2
        last = result.stderr.strip().splitlines()[-1]
        assert (
            last
            == f"perfgate: configuration error: [http] bind 127.0.0.1:{port}: Address already in use"
        )
        assert "Traceback" not in result.stderr
    finally:
        stop_server(proc)


def test_sigterm_stops_cleanly_with_exit_0(tmp_path: Path) -> None:
    proc, ready = start_server(tmp_path)
    assert ready["pid"] == proc.pid
    assert ready["http"].startswith("http://127.0.0.1:")
    assert httpx.get(ready["http"] + "/healthz").json() == {"status": "ok"}
    assert httpx.get(ready["http"] + "/readyz").status_code == 200
    code, err = stop_server(proc)
    assert code == 0, err
    assert "stopped" in err
    assert not list(tmp_path.glob("ready-*.json")), "the ready file is removed on exit"


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    proc, ready = start_server(tmp_path, "--log-format", "json")
    httpx.get(ready["http"] + "/healthz", headers={"X-Request-ID": "req-42"})
    _, err = stop_server(proc)
    records = [json.loads(line) for line in err.strip().splitlines()]
    access = [r for r in records if r["logger"] == "perfgate.access"]
    assert access and access[0]["request_id"] == "req-42" and access[0]["status"] == 200


def test_python_dash_m_is_the_same_command(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    script = subprocess.run(
        [str(Path(sys.executable).parent / "perfgate"), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == script.returncode == 0
    assert result.stdout == script.stdout == f"perfgate {version('perfgate')}\n"


def test_sigterm_closes_websocket_clients_with_1001(tmp_path: Path) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    proc, ready = start_server(tmp_path)
    with connect(ready["ws"] + "/ws", open_timeout=10) as ws:
        assert json.loads(ws.recv(10))["type"] == "welcome"
        proc.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(20)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    code, err = stop_server(proc)
    assert code == 0, err


def test_a_second_signal_stops_at_once(tmp_path: Path) -> None:
    proc, ready = start_server(tmp_path, env={"PERFGATE_POOL_DRAIN_TIMEOUT_S": "600"})
    job = httpx.post(ready["http"] + "/v1/jobs", json={"task": "sleep", "args": {"seconds": 300}})
    assert job.status_code == 202
    proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert proc.poll() is None, "still draining the sleeping job"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    _, err = stop_server(proc)
    assert proc.returncode == 0, err
    assert "second signal" in err


def test_sigterm_while_starting_stops_at_once(tmp_path: Path) -> None:
    # A broker that is not there keeps the server starting (it waits for the first
    # connection); a stop request then has nothing to drain and must not wait for it.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    ready = tmp_path / "ready.json"
    argv = perfgate_argv(str(tmp_path / "data"), str(ready))
    broker = ["--broker", f"redis://127.0.0.1:{dead_port}/0"]
    proc = subprocess.Popen(
        [*argv, *broker], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path
    )
    try:
        time.sleep(2.0)
        assert proc.poll() is None and not ready.exists()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert not ready.exists()
