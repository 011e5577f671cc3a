"""Declared task arguments (``[tasks.NAME.args.ARG]``) and the command template grammar. Pure.

A task may declare its arguments: each one's JSON type, and optionally an ``enum``, a regex
``pattern`` (matched against the whole value), bounds (``minimum``/``maximum`` for numbers,
``min_length``/``max_length`` for strings), ``required`` and a ``default``. A task that
declares any argument accepts those only: an unknown argument is refused at submit, as is a
missing required one, so that a bad argument never reaches a worker.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import attrs

from perfgate.errors import ConfigError
from perfgate.jsontext import json_type

ARG_TYPES = ("string", "integer", "number", "boolean")

#: ``{name}`` is a placeholder, ``{{`` and ``}}`` literal braces; any other brace is an error.
TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")


def placeholders(template: Sequence[str]) -> set[str]:
    """The argument names a command template uses. Raises ValueError on a stray brace."""
    names: set[str] = set()
    for element in template:
        for match in TEMPLATE_TOKEN.finditer(element):
            text = match.group(0)
            if match.group(1):
                names.add(match.group(1))
            elif text in ("{", "}"):
                raise ValueError(f"stray {text!r} in command element {element!r}; use {text * 2}")
    return names


def _matches_type(kind: str, value: Any) -> bool:
    actual = json_type(value)
    if kind == "number":
        return actual in ("integer", "number")
    if kind == "integer" and actual == "number":
        return bool(math.isfinite(value) and value.is_integer())  # JSON Schema: 3.0 is 3
    return actual == kind


def _known_type(_inst: Any, _attr: Any, value: str) -> None:
    if value not in ARG_TYPES:
        raise ConfigError(f"type: one of {', '.join(ARG_TYPES)}, got {value!r}")


@attrs.frozen
class TaskArg:
    """One declared argument. ``allow_options=None`` inherits the task's ``allow_options``."""

    type: str = attrs.field(default="string", validator=_known_type)
    required: bool = False
    default: Any = None
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    allow_options: bool | None = None
    description: str = ""

    def __attrs_post_init__(self) -> None:
        numeric = self.type in ("integer", "number")
        if self.pattern is not None:
            if self.type != "string":
                raise ConfigError("pattern: only for type = 'string'")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ConfigError(f"pattern: not a regular expression ({exc})") from None
        if (self.minimum is not None or self.maximum is not None) and not numeric:
            raise ConfigError("minimum/maximum: only for type = 'integer' or 'number'")
        if (self.min_length is not None or self.max_length is not None) and self.type != "string":
            raise ConfigError("min_length/max_length: only for type = 'string'")
        for name in ("min_length", "max_length"):
            length = getattr(self, name)
            if length is not None and length < 0:
                raise ConfigError(f"{name}: must be >= 0, got {length!r}")
        if self.enum is not None:
            if not self.enum:
                raise ConfigError("enum: must not be empty")
            for item in self.enum:
                if not _matches_type(self.type, item):
                    raise ConfigError(f"enum: {item!r} is not of type {self.type!r}")
        if self.required and self.default is not None:
            raise ConfigError("give 'required' or a 'default', not both")
        if self.default is not None:
            problem = self.problem(self.default)
            if problem is not None:
                raise ConfigError(f"default {self.default!r}: {problem}")

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this argument, in words; None if it is fine."""
        if not _matches_type(self.type, value):
            return f"expected {self.type}, got {json_type(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if self.enum is not None and value not in self.enum:
            return f"must be one of {', '.join(map(str, self.enum))}"
        if self.minimum is not None and value < self.minimum:
            return f"must be >= {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be <= {self.maximum:g}"
        if self.min_length is not None and len(value) < self.min_length:
            return f"must be at least {self.min_length} characters"
        if self.max_length is not None and len(value) > self.max_length:
            return f"must be at most {self.max_length} characters"
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            return f"must match the pattern {self.pattern!r}"
        return None

    def normalise(self, value: Any) -> Any:
        """``value`` (already checked) as the task receives it: ``3.0`` for an integer is 3."""
        if self.type == "integer" and isinstance(value, float):
            return int(value)
        return value
