"""Command argv templates: ``["make", "-C", "{project}"]`` + job args -> argv. Pure.

Each ``{name}`` is replaced by the string form of one job argument. The substitution happens
*inside* one argv element, so a value can never become two arguments or reach a shell: there
is no shell and no splitting. ``{{`` and ``}}`` are literal braces. Every argument must be a
scalar (string, finite number, boolean), every placeholder must have an argument, and every
argument must be used by a placeholder (an unused argument is almost always a typo).

A value is still an *argument* to a program that parses options, so by default a value
whose text starts with ``-`` is refused (issue 19.3: ``{"path": "--help"}`` printed ``ls``'s
usage, and ``["sort", "{file}"]`` with ``"-o/some/path"`` wrote a file the caller chose).
This holds wherever the placeholder sits in its element ("--out={path}" too): one rule,
no guessing at how a program splits ``--opt=value``. A task opts in with ``allow_options``
(for the task or one argument). A value that ``exec`` cannot carry is refused too: a NUL
byte, text that is not UTF-8, or an element longer than the kernel takes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from perfgate.config import TEMPLATE_TOKEN, placeholders
from perfgate.errors import ValidationError

__all__ = ["MAX_ARG_BYTES", "argv_problems", "placeholders", "render_argv"]

MAX_ARG_BYTES = 131_072
"""Linux's ``MAX_ARG_STRLEN``: ``exec`` fails (E2BIG) on a longer argv element."""


def _never(_name: str) -> bool:
    return False


def _text(value: Any) -> tuple[str | None, str | None]:
    """``(text, None)`` for a value that can fill a placeholder, else ``(None, problem)``."""
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, float) and not math.isfinite(value):
        return None, "must be a finite number"
    if isinstance(value, str | int | float):
        try:
            text = str(value)
        except ValueError:  # an int beyond str()'s digit limit
            return None, "the number is too long"
        if "\x00" in text:
            return None, "must not contain a NUL byte"
        try:
            size_bytes = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            return None, "must be UTF-8 text (it holds a lone surrogate)"
        if size_bytes > MAX_ARG_BYTES:
            return None, f"must be at most {MAX_ARG_BYTES} bytes"
        return text, None
    kind = "null" if value is None else type(value).__name__
    return None, f"must be a string, number or boolean, got {kind}"


def argv_problems(
    template: Sequence[str],
    args: Mapping[str, Any],
    options_allowed: Callable[[str], bool] = _never,
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Check ``args`` against ``template``: ``(texts by name, problems)``.

    Each problem is ``{"field": "args.NAME", "message": ...}``, one per bad argument, so
    that a client learns everything wrong at once. Raises ``ValueError`` on a stray brace.
    """
    used = placeholders(template)
    problems: list[dict[str, str]] = []
    for name in sorted(used - set(args)):
        problems.append({"field": f"args.{name}", "message": "required by the command"})
    for name in sorted(set(args) - used, key=str):
        uses = ", ".join(sorted(used)) or "none"
        problems.append(
            {"field": f"args.{name}", "message": f"unknown argument (the command uses: {uses})"}
        )
    texts: dict[str, str] = {}
    for name in sorted(used & set(args)):
        text, problem = _text(args[name])
        if problem is None and text is not None:
            if text.startswith("-") and not options_allowed(name):
                problem = (
                    "must not start with '-': the program would read it as an option "
                    "(the task can set allow_options)"
                )
            else:
                texts[name] = text
        if problem is not None:
            problems.append({"field": f"args.{name}", "message": problem})
    return texts, problems


def raise_problems(problems: list[dict[str, str]]) -> None:
    """Raise one :class:`ValidationError` (422) naming every problem, if there are any."""
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        raise ValidationError(summary, field=problems[0]["field"], errors=problems)


def render_argv(
    template: Sequence[str],
    args: Mapping[str, Any],
    *,
    options_allowed: Callable[[str], bool] = _never,
) -> list[str]:
    """Fill the template. Raises :class:`ValidationError` (422) naming every bad argument."""
    try:
        texts, problems = argv_problems(template, args, options_allowed)
    except ValueError as exc:
        raise ValidationError(f"bad command template: {exc}") from None
    raise_problems(problems)

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return texts[match.group(1)]
        return match.group(0)[0]

    return [TEMPLATE_TOKEN.sub(substitute, element) for element in template]
