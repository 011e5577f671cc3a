"""Command argv templates: each value stays one argument; bad args are 422 naming the field."""

from __future__ import annotations

import pytest

from perfgate.errors import ValidationError
from perfgate.pool.template import placeholders, render_argv


def test_each_value_stays_one_argument() -> None:
    argv = render_argv(
        ["make", "-C", "{project}", "--jobs={n}", "{{literal}}"],
        {"project": "my dir; rm -rf /", "n": 4},
    )
    assert argv == ["make", "-C", "my dir; rm -rf /", "--jobs=4", "{literal}"]


def test_booleans_and_floats() -> None:
    assert render_argv(["{a}", "{b}"], {"a": True, "b": 1.5}) == ["true", "1.5"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({}, "args.project"),
        ({"project": ["a", "b"]}, "args.project"),
        ({"project": {"x": 1}}, "args.project"),
        ({"project": None}, "args.project"),
        ({"project": "x", "extra": "y"}, "args.extra"),
    ],
)
def test_missing_extra_or_non_scalar_args_are_422(args: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        render_argv(["make", "{project}"], args)
    assert info.value.status == 422
    assert info.value.extra["field"] == field


def test_stray_brace_in_template_is_reported() -> None:
    with pytest.raises(ValueError, match="stray"):
        placeholders(["echo", "{oops"])
    with pytest.raises(ValidationError):
        render_argv(["echo", "}"], {})
