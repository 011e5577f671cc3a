"""The README is true: it documents every configuration key with its default, and its
examples run as written against a live server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from perfgate.config import TaskArg
from perfgate.config._model import SECTIONS
from perfgate.config._schedules import ScheduleConfig
from perfgate.config._tasks import TaskConfig, builtin_tasks
from tests.helpers import start_server, stop_server

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize(
    ("section", "key"),
    [(name, f.name) for name, cls in SECTIONS.items() for f in attrs.fields(cls)],
)
def test_every_config_key_is_in_the_readme(section: str, key: str) -> None:
    start = README.index(f"| **[{section}]** |") + 1
    rows = README[start:].split("| **[", 1)[0]  # up to the next section's header row
    assert f"| `{key}` |" in rows


def test_readme_gives_the_two_commands() -> None:
    assert "make run" in README and "make test" in README


@pytest.mark.parametrize(
    ("table", "key"),
    [("task key", f.name) for f in attrs.fields(TaskConfig) if f.name != "name"]
    + [("argument key", f.name) for f in attrs.fields(TaskArg)]
    + [("schedule key", f.name) for f in attrs.fields(ScheduleConfig) if f.name != "name"],
)
def test_every_task_and_argument_key_is_in_the_readme(table: str, key: str) -> None:
    start = README.index(f"| {table}")
    rows = README[start:].split("\n\n", 1)[0]
    assert f"`{key}`" in rows


# -- examples that run --------------------------------------------------------------------------
# A fenced block whose info string is "sh run" or "python run" is an example the tests run, in
# README order, against one live server (other blocks are illustrations: config files, commands
# that need Docker or systemd). The only change made is the server's address: the README's
# localhost:8080 and localhost:8081 become the test server's free ports.

RUNNABLE = re.compile(r"^```(sh|python) run\n(.*?)^```", re.M | re.S)


def runnable_blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in RUNNABLE.finditer(README)]


def test_the_quick_start_and_the_websocket_example_are_runnable() -> None:
    kinds = [kind for kind, _ in runnable_blocks()]
    assert kinds.count("sh") >= 1 and kinds.count("python") >= 1
    for _, code in runnable_blocks():
        assert "<" not in code.replace("<<", ""), "a placeholder to fill in by hand"
        assert "…" not in code
        assert not re.search(r"^\s*open\s", code, re.M), "macOS only"


def test_the_readme_examples_run_against_a_live_server(tmp_path: Path) -> None:
    proc, ready = start_server(tmp_path)
    http = ready["http"].removeprefix("http://")
    ws = ready["ws"].removeprefix("ws://")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    try:
        for kind, code in runnable_blocks():
            code = code.replace("localhost:8080", http).replace("localhost:8081", ws)
            argv = ["bash", "-euo", "pipefail", "-c", code]
            if kind == "python":
                argv = [sys.executable, "-c", code]
            run = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
            assert run.returncode == 0, (code, run.stdout, run.stderr)
            assert run.stdout.strip(), code  # each example shows something
            if kind == "sh":
                assert json.loads(run.stdout.splitlines()[-1])["state"] == "succeeded"
            elif "perfgate.client" in code:
                assert "succeeded" in run.stdout, code
            else:
                assert "'recovered': True" in run.stdout and "hello" in run.stdout
    finally:
        code_, err = stop_server(proc)
    assert code_ == 0, err[-2000:]


def test_the_built_in_tasks_take_the_documented_default_timeout() -> None:
    documented = float(re.search(r"timeout_s = \d+ +# default (\d+)", README).group(1))  # type: ignore[union-attr]
    assert documented == attrs.fields(TaskConfig).timeout_s.default
    assert {t.timeout_s for t in builtin_tasks().values()} == {documented}


def test_the_package_ships_the_license_it_claims() -> None:
    root = Path(__file__).parent.parent
    assert 'license = "MIT"' in (root / "pyproject.toml").read_text()
    assert (root / "LICENSE").read_text().startswith("MIT License")
