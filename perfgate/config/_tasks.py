"""``[tasks.NAME]``: what a job can run, and the tasks every fresh install has."""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from perfgate.config._args import TaskArg, placeholders
from perfgate.config._values import non_negative, optional, positive
from perfgate.errors import ConfigError
from perfgate.priorities import PRIORITIES

_TASK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", re.ASCII)


@attrs.frozen
class TaskConfig:
    """A named task: a Python ``target`` ("module:function") or an argv ``command`` template."""

    name: str
    target: str | None = None
    command: tuple[str, ...] | None = None
    timeout_s: float = attrs.field(default=300.0, validator=positive)
    max_retries: int = attrs.field(default=0, validator=non_negative)
    cacheable: bool = False
    priority: str = attrs.field(default="normal", validator=attrs.validators.in_(PRIORITIES))
    #: May a value substituted into ``command`` start with "-"? Off: "--help" or "-o/etc/x"
    #: would reach the program as an option (issue 19.3). Per argument: ``TaskArg``.
    allow_options: bool = False
    #: Declared arguments (``[tasks.NAME.args.ARG]``); empty: any arguments (Python tasks)
    #: or the command's placeholders, unchecked beyond the command rules.
    args: Mapping[str, TaskArg] = attrs.field(factory=dict)
    #: At most this many of its jobs run at once (across instances on one Redis); None: no cap.
    max_concurrency: int | None = attrs.field(default=None, validator=optional(positive))
    #: At most this many of its jobs start per second (a token bucket); None: no cap.
    rate_per_s: float | None = attrs.field(default=None, validator=optional(positive))

    def options_allowed(self, arg: str) -> bool:
        """Whether the value of ``arg`` may start with "-" when substituted into ``command``."""
        declared = self.args.get(arg)
        if declared is not None and declared.allow_options is not None:
            return declared.allow_options
        return self.allow_options

    def __attrs_post_init__(self) -> None:
        if not _TASK_NAME.fullmatch(self.name):
            raise ConfigError(f"task name {self.name!r}: letters, digits, '_', '.', '-' only")
        if (self.target is None) == (self.command is None):
            raise ConfigError(f"[tasks.{self.name}]: give exactly one of 'target' or 'command'")
        if self.target is not None and not _TARGET.fullmatch(self.target):
            raise ConfigError(
                f"[tasks.{self.name}] target: expected 'module.path:function', got {self.target!r}"
            )
        if self.command is not None and not self.command:
            raise ConfigError(f"[tasks.{self.name}] command: must not be empty")
        for arg in self.args:
            if not _ARG_NAME.fullmatch(arg):
                raise ConfigError(f"[tasks.{self.name}.args] {arg!r}: not an identifier")
        if self.command is not None:
            self._check_template(self.command)

    def _check_template(self, command: tuple[str, ...]) -> None:
        try:
            used = placeholders(command)
        except ValueError as exc:
            raise ConfigError(f"[tasks.{self.name}] command: {exc}") from None
        if not self.args:
            return
        for name in sorted(used - set(self.args)):
            raise ConfigError(f"[tasks.{self.name}] command: {{{name}}} is not declared in args")
        for name in sorted(set(self.args) - used):
            raise ConfigError(f"[tasks.{self.name}.args.{name}]: not used by the command")


def builtin_tasks() -> dict[str, TaskConfig]:
    """The tasks every fresh install has, so that ``make run`` does real work. They take the
    documented defaults (``timeout_s`` 300, no retries) like any task configured without them."""
    return {
        "echo": TaskConfig(name="echo", target="perfgate.tasks:echo"),
        "sleep": TaskConfig(
            name="sleep",
            target="perfgate.tasks:sleep",
            args={
                "seconds": TaskArg(type="number", minimum=0, maximum=86_400),
                "steps": TaskArg(type="integer", minimum=1, maximum=100_000),
            },
        ),
        "sha256": TaskConfig(
            name="sha256",
            target="perfgate.tasks:sha256",
            cacheable=True,
            args={
                "data": TaskArg(type="string"),
                "rounds": TaskArg(type="integer", minimum=1, maximum=10_000_000),
            },
        ),
    }
