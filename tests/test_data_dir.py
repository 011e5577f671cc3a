"""The data directory at start: one server holds it; an unusable one is a one-line exit 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from perfgate.bench.server import perfgate_argv
from tests.helpers import start_server, stop_server, tmpfs


def serve(
    data_dir: Path, cwd: Path, ready_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        perfgate_argv(str(data_dir), str(ready_file or cwd / "ready-second.json")),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_second_server_on_a_live_data_dir_exits_2_naming_the_holder(tmp_path: Path) -> None:
    ready_file = tmp_path / "ready.json"
    first, ready = start_server(tmp_path, ready_file=ready_file)
    try:
        # Even given the same ready file, the second one leaves the first one's alone.
        line = one_line(serve(tmp_path / "data", tmp_path, ready_file))
        assert f"pid {first.pid}" in line
        assert str(tmp_path / "data") in line
        assert json.loads(ready_file.read_text())["pid"] == first.pid
        # The first one is untouched: still ready.
        assert httpx.get(ready["http"] + "/readyz", timeout=10).status_code == 200
    finally:
        code, err = stop_server(first)
    assert code == 0, err
    # Once the holder stopped, the directory is free again.
    again, _ = start_server(tmp_path)
    code, err = stop_server(again)
    assert code == 0, err


def test_a_journal_that_cannot_be_opened_exits_2_naming_the_path(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "journal.sqlite3").mkdir(parents=True)  # a directory where the database goes
    line = one_line(serve(data, tmp_path))
    assert str(data) in line


def test_a_data_dir_under_a_regular_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    line = one_line(serve(tmp_path / "file" / "data", tmp_path))
    assert str(tmp_path / "file" / "data") in line


def test_a_read_only_data_dir_exits_2_with_one_line(tmp_path: Path) -> None:
    # a read-only tmpfs (root can write through a chmod, not through a ro mount)
    with tmpfs(tmp_path / "ro", "ro,size=1m") as data:
        line = one_line(serve(data, tmp_path))
    assert str(data) in line and "Read-only file system" in line
