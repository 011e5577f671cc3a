"""``perfgate serve`` checks every task before serving: a Python target that does not import
or is not callable, or a program that does not resolve, is exit 2 with one line naming it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from perfgate.config import TaskConfig, builtin_tasks
from perfgate.errors import ConfigError
from perfgate.pool.preflight import check_tasks, command_problem, target_problems
from tests.helpers import PYTHON

MODULE = """
import os, time
import json as not_callable
SIDE_EFFECT = os.environ.get("PREFLIGHT_MARK")
if SIDE_EFFECT:
    open(SIDE_EFFECT, "w").write("imported")
def ok(**kw):
    return kw
value = 3
def _hang():
    time.sleep(600)
"""


@pytest.fixture
def tasks_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pf_tasks.py").write_text(MODULE)
    (tmp_path / "pf_hang.py").write_text("import time\ntime.sleep(600)\ndef f(): pass\n")
    (tmp_path / "pf_exit.py").write_text("import os\nos._exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_targets_are_imported_in_a_child_not_here(
    tasks_module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = tasks_module / "imported.txt"
    monkeypatch.setenv("PREFLIGHT_MARK", str(mark))
    problems = target_problems(
        [
            ("good", "pf_tasks:ok"),
            ("missing_module", "pf_nope:ok"),
            ("missing_attr", "pf_tasks:nope"),
            ("not_callable", "pf_tasks:value"),
            ("builtin", "perfgate.tasks:echo"),
        ]
    )
    assert set(problems) == {"missing_module", "missing_attr", "not_callable"}
    assert "ModuleNotFoundError" in problems["missing_module"]
    assert "AttributeError" in problems["missing_attr"]
    assert "not callable" in problems["not_callable"]
    assert mark.read_text() == "imported"  # the child ran the module's top level...
    import sys

    assert "pf_tasks" not in sys.modules  # ...and this process did not


def test_a_hanging_or_dying_import_is_named(tasks_module: Path) -> None:
    hung = target_problems([("good", "pf_tasks:ok"), ("slow", "pf_hang:f")], timeout_s=3)
    assert list(hung) == ["slow"] and "longer than 3s" in hung["slow"]
    died = target_problems([("quits", "pf_exit:f"), ("good", "pf_tasks:ok")])
    assert list(died) == ["quits"] and "died" in died["quits"]


def test_command_programs_resolve(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    assert command_problem(TaskConfig(name="t", command=("true",))) is None
    assert command_problem(TaskConfig(name="t", command=("{prog}",))) is None
    assert "not on PATH" in str(command_problem(TaskConfig(name="t", command=("no-such-prog",))))
    assert "not an executable" in str(command_problem(TaskConfig(name="t", command=(str(script),))))
    script.chmod(0o755)
    assert command_problem(TaskConfig(name="t", command=(str(script),))) is None


def test_check_tasks_names_the_first_bad_task_in_one_line(tasks_module: Path) -> None:
    check_tasks(builtin_tasks())
    bad = {**builtin_tasks(), "broken": TaskConfig(name="broken", target="pf_nope:run")}
    with pytest.raises(ConfigError) as refused:
        check_tasks(bad)
    assert refused.value.message.startswith("[tasks.broken] target 'pf_nope:run': ")
    assert "\n" not in refused.value.message
    bad = {**builtin_tasks(), "shell": TaskConfig(name="shell", command=("no-such-prog", "x"))}
    with pytest.raises(ConfigError, match=r"\[tasks.shell\] command: program 'no-such-prog'"):
        check_tasks(bad)


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ('[tasks.broken]\ntarget = "no_such_module:run"\n', "[tasks.broken] target"),
        ('[tasks.sh]\ncommand = ["no-such-program-x"]\n', "[tasks.sh] command: program"),
        ('[schedules.s]\ntask = "nope"\nevery_s = 5\n', "[schedules.s] task: unknown task"),
        ('[schedules.s]\ntask = "echo"\ncron = "every day"\n', "[schedules.s] cron"),
    ],
)
def test_serve_exits_2_with_one_line_naming_it(tmp_path: Path, table: str, fragment: str) -> None:
    (tmp_path / "perfgate.toml").write_text(table)
    result = subprocess.run(
        [PYTHON, "-m", "perfgate", "serve", "--config", "perfgate.toml", "--http", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
