"""Command argv templates: ``["make", "-C", "{project}"]`` + job args -> argv. Pure.

Each ``{name}`` is replaced by the string form of one job argument. The substitution happens
*inside* one argv element, so a value can never become two arguments or reach a shell: there
is no shell and no splitting. ``{{`` and ``}}`` are literal braces. Every argument must be a
scalar (string, number, boolean), every placeholder must have an argument, and every argument
must be used by a placeholder (an unused argument is almost always a typo).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from perfgate.errors import ValidationError

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")


def placeholders(template: Sequence[str]) -> set[str]:
    """The argument names a template uses. Raises ValueError on a stray brace."""
    names: set[str] = set()
    for element in template:
        for match in _TOKEN.finditer(element):
            text = match.group(0)
            if match.group(1):
                names.add(match.group(1))
            elif text in ("{", "}"):
                raise ValueError(f"stray {text!r} in command element {element!r}; use {text * 2}")
    return names


def _scalar_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValidationError(
        f"argument {name!r} must be a string, number or boolean, got {type(value).__name__}",
        field=f"args.{name}",
    )


def render_argv(template: Sequence[str], args: Mapping[str, Any]) -> list[str]:
    """Fill the template. Raises :class:`ValidationError` (422) on a missing/extra/bad arg."""
    try:
        used = placeholders(template)
    except ValueError as exc:
        raise ValidationError(f"bad command template: {exc}") from None
    missing = sorted(used - set(args))
    if missing:
        raise ValidationError(f"missing argument {missing[0]!r}", field=f"args.{missing[0]}")
    unused = sorted(set(args) - used)
    if unused:
        raise ValidationError(
            f"unknown argument {unused[0]!r} (the command uses: {', '.join(sorted(used))})",
            field=f"args.{unused[0]}",
        )
    texts = {name: _scalar_text(name, args[name]) for name in used}

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return texts[match.group(1)]
        return match.group(0)[0]

    return [_TOKEN.sub(substitute, element) for element in template]
