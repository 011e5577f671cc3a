"""Task arguments at submit (perfgate.pool.validation.check_args): declared arguments, and
what a command's argv may carry (issue 19.3). Pure: no pool, no process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfgate.config import TaskArg, TaskConfig, load_config
from perfgate.errors import ConfigError, ValidationError
from perfgate.pool.template import MAX_ARG_BYTES, render_argv
from perfgate.pool.validation import check_args

LS = TaskConfig(name="ls", command=("ls", "{path}"))
OUT = TaskConfig(name="out", command=("tool", "--out={path}", "x{n}"))
OPEN = TaskConfig(name="open", command=("tool", "{path}"), allow_options=True)


def _fields(task: TaskConfig, args: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        check_args(task, args)
    assert info.value.status == 422
    return [e["field"] for e in info.value.extra["errors"]]


@given(st.text().map(lambda t: "-" + t))
def test_any_value_starting_with_a_dash_is_refused(value: str) -> None:
    assert _fields(LS, {"path": value}) == ["args.path"]
    assert _fields(OUT, {"path": value, "n": 1}) == ["args.path"]


@given(st.text(min_size=1).filter(lambda t: not t.startswith("-") and "\x00" not in t))
def test_any_other_text_is_exactly_one_argument(value: str) -> None:
    assert render_argv(LS.command, check_args(LS, {"path": value})) == ["ls", value]


@given(st.integers(max_value=-1) | st.floats(max_value=-0.001, allow_infinity=False))
def test_negative_numbers_are_options_too(value: float) -> None:
    assert _fields(LS, {"path": value}) == ["args.path"]


@given(st.text().filter(lambda t: "\x00" not in t).map(lambda t: "-" + t))
def test_a_task_that_allows_options_takes_them(value: str) -> None:
    args = check_args(OPEN, {"path": value})
    assert render_argv(OPEN.command, args, options_allowed=OPEN.options_allowed) == ["tool", value]


def test_the_worker_side_render_holds_the_same_rule() -> None:
    with pytest.raises(ValidationError):
        render_argv(LS.command, {"path": "--help"})


@pytest.mark.parametrize(
    "value",
    ["a\x00b", "\ud800", None, [], {}, float("nan"), float("inf"), "x" * (MAX_ARG_BYTES + 1)],
)
def test_values_exec_cannot_carry_are_refused(value: Any) -> None:
    assert _fields(OPEN, {"path": value}) == ["args.path"]


def test_every_bad_argument_is_named_at_once() -> None:
    task = TaskConfig(name="t", command=("tool", "{a}", "{b}", "{c}"))
    assert sorted(_fields(task, {"a": "-x", "b": None, "d": 1})) == [
        "args.a",
        "args.b",
        "args.c",
        "args.d",
    ]


RESIZE = TaskConfig(
    name="resize",
    target="mod:fn",
    args={
        "width": TaskArg(type="integer", minimum=1, maximum=100, required=True),
        "ratio": TaskArg(type="number", minimum=0, maximum=1),
        "mode": TaskArg(enum=("fit", "fill"), default="fit"),
        "name": TaskArg(pattern="[a-z]+", min_length=2, max_length=8),
        "force": TaskArg(type="boolean"),
    },
)


@pytest.mark.parametrize(
    ("args", "fields"),
    [
        ({}, ["args.width"]),
        ({"width": 0}, ["args.width"]),
        ({"width": 101}, ["args.width"]),
        ({"width": 1.5}, ["args.width"]),
        ({"width": True}, ["args.width"]),
        ({"width": "5"}, ["args.width"]),
        ({"width": 5, "ratio": 2}, ["args.ratio"]),
        ({"width": 5, "ratio": "0.5"}, ["args.ratio"]),
        ({"width": 5, "mode": "stretch"}, ["args.mode"]),
        ({"width": 5, "name": "news\n"}, ["args.name"]),  # the pattern matches whole values
        ({"width": 5, "name": "a"}, ["args.name"]),
        ({"width": 5, "name": "abcdefghi"}, ["args.name"]),
        ({"width": 5, "force": 1}, ["args.force"]),
        ({"width": 5, "other": 1}, ["args.other"]),
        ({"ratio": -1, "mode": 3, "x": 1}, ["args.ratio", "args.mode", "args.x", "args.width"]),
    ],
)
def test_declared_arguments(args: dict[str, Any], fields: list[str]) -> None:
    assert _fields(RESIZE, args) == fields


def test_declared_defaults_fill_in_and_integers_are_integers() -> None:
    assert check_args(RESIZE, {"width": 5.0, "ratio": 1}) == {"width": 5, "ratio": 1, "mode": "fit"}


def test_undeclared_python_tasks_take_any_identifier_arguments() -> None:
    echo = TaskConfig(name="echo", target="mod:fn")
    assert check_args(echo, {"a": [1, {"b": None}]}) == {"a": [1, {"b": None}]}
    assert _fields(echo, {"not one": 1}) == ["args.not one"]


def test_builtin_tasks_declare_their_arguments() -> None:
    tasks = load_config(None, env={}).tasks
    assert set(tasks["sleep"].args) == {"seconds", "steps"}
    assert set(tasks["sha256"].args) == {"data", "rounds"}
    assert _fields(tasks["sleep"], {"seconds": -1}) == ["args.seconds"]


# -- configuration ---------------------------------------------------------------------------


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "perfgate.toml"
    path.write_text(text)
    return load_config(path, env={})


def test_arguments_are_declared_in_toml(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        """
[tasks.ls]
command = ["ls", "{flags}", "{path}"]
[tasks.ls.args.path]
pattern = "[A-Za-z0-9_./]+"
max_length = 200
required = true
[tasks.ls.args.flags]
enum = ["-l", "-la"]
default = "-l"
allow_options = true
""",
    )
    task = config.tasks["ls"]
    assert check_args(task, {"path": "src"}) == {"path": "src", "flags": "-l"}
    argv = render_argv(
        task.command, check_args(task, {"path": "src"}), options_allowed=task.options_allowed
    )
    assert argv == ["ls", "-l", "src"]
    assert _fields(task, {"path": "-R"}) == ["args.path"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[tasks.t]\ncommand = ["ls", "{p}"]\n[tasks.t.args.q]\n', "not declared"),
        ('[tasks.t]\ncommand = ["ls", "{p}"]\n[tasks.t.args.p]\n[tasks.t.args.q]\n', "not used"),
        ('[tasks.t]\ncommand = ["ls", "{p"]\n', "stray"),
        ('[tasks.t]\ntarget = "m:f"\n[tasks.t.args.p]\ntype = "text"\n', "type"),
        ('[tasks.t]\ntarget = "m:f"\n[tasks.t.args.p]\nmax = 3\n', "unknown key"),
        ('[tasks.t]\ntarget = "m:f"\n[tasks.t.args.p]\npattern = "("\n', "pattern"),
        (
            '[tasks.t]\ntarget = "m:f"\n[tasks.t.args.p]\ntype = "integer"\npattern = "1"\n',
            "pattern",
        ),
        ('[tasks.t]\ntarget = "m:f"\n[tasks.t.args.p]\nminimum = 1\n', "minimum"),
        ('[tasks.t]\ntarget = "m:f"\n[tasks.t.args.p]\nenum = [1]\n', "enum"),
        ('[tasks.t]\ntarget = "m:f"\n[tasks.t.args.p]\nenum = ["a"]\ndefault = "b"\n', "default"),
        (
            '[tasks.t]\ntarget = "m:f"\n[tasks.t.args.p]\nrequired = true\ndefault = "b"\n',
            "default",
        ),
        ('[tasks.t]\ntarget = "m:f"\n[tasks.t.args."a-b"]\n', "identifier"),
        ('[tasks.t]\ntarget = "m:f"\nargs = 3\n', "table"),
    ],
)
def test_bad_declarations_are_config_errors(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _load(tmp_path, text)


@pytest.mark.parametrize(
    ("section", "text"),
    [
        ("tasks", '[tasks."echo\\n"]\ntarget = "m:f"\n'),
        ("tasks", '[tasks.t]\ntarget = "m:f\\n"\n'),
        ("http", '[http]\ncors_origins = ["https://a.example\\n"]\n'),
        ("http", '[http]\nbind = "127.0.0.1:80\\n"\n'),
        ("http", '[http]\nbind = "127.0.0.1:²"\n'),
        ("server", '[server]\nbroker = "redis://h:1/²"\n'),
        ("auth", '[auth.tokens]\n"token1234\\n" = ["admin"]\n'),
        ("auth", '[auth.tokens]\n"token 1234" = ["admin"]\n'),
    ],
)
def test_whole_string_config_patterns(tmp_path: Path, section: str, text: str) -> None:
    with pytest.raises(ConfigError):
        _load(tmp_path, text)
