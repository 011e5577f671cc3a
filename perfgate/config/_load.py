"""Load configuration: a TOML file, overridden by ``PERFGATE_*`` variables, overridden by flags.

Every failure is a :class:`~perfgate.errors.ConfigError` whose message is one line that names
where the bad value came from (``[http] bind``, ``PERFGATE_HTTP_BIND`` or ``--http``).
"""

from __future__ import annotations

import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from perfgate.config._model import SECTIONS, Config
from perfgate.config._schedules import ScheduleConfig
from perfgate.config._tasks import TaskConfig, builtin_tasks
from perfgate.errors import ConfigError

ENV_PREFIX = "PERFGATE_"
DEFAULT_FILE = "perfgate.toml"

#: ``{section: {key: value}}`` with values already of the right type (from command-line flags).
Overrides = Mapping[str, Mapping[str, Any]]


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Overrides | None = None,
) -> Config:
    """Build the :class:`Config`. ``path=None`` reads ``perfgate.toml`` if it exists.

    ``env`` defaults to ``os.environ``; only ``PERFGATE_<SECTION>_<KEY>`` names are read, and an
    unknown one is an error (a typo must not be silently ignored).
    """
    raw = _read_file(path)
    env = os.environ if env is None else env
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = raw.pop(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{name}]: expected a table")
        values = {key: _coerce(cls, key, value, f"[{name}] {key}") for key, value in table.items()}
        values.update(_from_env(env, name, cls))
        for key, value in (overrides or {}).get(name, {}).items():
            values[key] = _coerce(cls, key, value, f"[{name}] {key}")
        sections[name] = _build(cls, values, f"[{name}]")
    tasks = builtin_tasks()
    task_tables = raw.pop("tasks", {})
    if not isinstance(task_tables, dict):
        raise ConfigError("[tasks]: expected tables like [tasks.NAME]")
    for task_name, table in task_tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"[tasks.{task_name}]: expected a table")
        values = {
            key: _coerce(TaskConfig, key, value, f"[tasks.{task_name}] {key}")
            for key, value in table.items()
            if key != "name"
        }
        tasks[task_name] = _build(TaskConfig, {"name": task_name, **values}, f"[tasks.{task_name}]")
    schedules = _named_tables(raw.pop("schedules", {}), "schedules", ScheduleConfig)
    _check_unknown_env(env)
    if raw:
        raise ConfigError(f"unknown section [{sorted(raw)[0]}] (known: {', '.join(_known())})")
    return Config(**sections, tasks=tasks, schedules=schedules)


def _named_tables(tables: Any, section: str, cls: type[Any]) -> dict[str, Any]:
    """``[section.NAME]`` tables, each built as ``cls(name=NAME, ...)``."""
    if not isinstance(tables, dict):
        raise ConfigError(f"[{section}]: expected tables like [{section}.NAME]")
    out: dict[str, Any] = {}
    for name, table in tables.items():
        where = f"[{section}.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table")
        values = {
            key: _coerce(cls, key, value, f"{where} {key}")
            for key, value in table.items()
            if key != "name"
        }
        out[name] = _build(cls, {"name": name, **values}, where)
    return out


def _known() -> list[str]:
    return [*SECTIONS, "tasks", "schedules"]


def _read_file(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    if path is None:
        if not Path(DEFAULT_FILE).is_file():
            return {}
        path = DEFAULT_FILE
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {os.fspath(path)}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file is a directory: {os.fspath(path)}") from None
    except PermissionError:
        raise ConfigError(f"config file not readable: {os.fspath(path)}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{os.fspath(path)}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{os.fspath(path)}: not UTF-8 text") from None


def _build(cls: type[Any], values: dict[str, Any], where: str) -> Any:
    try:
        return cls(**values)
    except ConfigError as exc:
        message = exc.message
        raise ConfigError(message if message.startswith("[") else f"{where} {message}") from None


def _field_types(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(cls: type[Any], key: str, value: Any, where: str) -> Any:
    """Check a value parsed from TOML (or given by a flag) against the field's declared type."""
    types_ = _field_types(cls)
    if key not in types_ or key not in attrs.fields_dict(cls):
        known = ", ".join(f for f in attrs.fields_dict(cls) if f != "name")
        raise ConfigError(f"{where}: unknown key (known: {known})")
    return _check_type(types_[key], value, where)


def _check_type(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value  # checked by the model's own validator (e.g. a TaskArg default)
    if isinstance(tp, type) and hasattr(tp, "from_config"):
        # A value with more than one accepted shape (``[auth] tokens``) parses itself.
        return tp.from_config(value, where)
    if attrs.has(tp):
        # A nested table, e.g. [tasks.NAME.args.ARG]: the same checks, one level down.
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        fields = {str(k): _coerce(tp, str(k), v, f"{where}.{k}") for k, v in value.items()}
        return _build(tp, fields, f"{where}:")
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        (inner,) = [t for t in options if t is not type(None)]
        return _check_type(inner, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if origin is tuple:
        if typing.get_args(tp)[0] is Any:
            if isinstance(value, list | tuple) and all(
                isinstance(v, str | int | float | bool) for v in value
            ):
                return tuple(value)
            raise ConfigError(f"{where}: expected a list of values, got {value!r}")
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    if origin in (Mapping, dict, typing.Mapping):
        _, value_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return {str(k): _check_type(value_tp, v, f"{where}.{k}") for k, v in value.items()}
    raise ConfigError(f"{where}: unsupported type")  # pragma: no cover - a model bug


def _env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def _from_env(env: Mapping[str, str], section: str, cls: type[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    hints = _field_types(cls)
    for key in attrs.fields_dict(cls):
        name = _env_name(section, key)
        if name in env:
            out[key] = _parse_env(hints[key], env[name], name)
    return out


def _parse_env(tp: Any, text: str, where: str) -> Any:
    """Parse a string from the environment as the field's type.

    Scalars are written plainly (``8080``, ``true``); lists as ``a,b,c`` or a JSON array;
    tables (``PERFGATE_AUTH_TOKENS``) as a JSON object (``{"TOKEN": ["submit"]}`` or
    ``{"TOKEN": {"scopes": ["submit"], "tenant": "acme"}}``).
    """
    origin = typing.get_origin(tp)
    if tp is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {text!r}")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {text!r}") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {text!r}") from None
    if tp is str:
        return text
    if origin is tuple:
        stripped = text.strip()
        if stripped.startswith("["):
            return _check_type(tp, _json(stripped, where), where)
        return tuple(part.strip() for part in stripped.split(",") if part.strip())
    return _check_type(tp, _json(text, where), where)


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ConfigError(f"{where}: expected JSON, got {text!r}") from None


def _check_unknown_env(env: Mapping[str, str]) -> None:
    known = {_env_name(s, k) for s, cls in SECTIONS.items() for k in attrs.fields_dict(cls)}
    # Variables read elsewhere on purpose (not configuration keys).
    known |= {"PERFGATE_CONFIG"}
    for name in env:
        if name.startswith(ENV_PREFIX) and name not in known:
            raise ConfigError(f"unknown environment variable {name}")
