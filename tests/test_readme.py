"""The README documents every configuration key with its default."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from perfgate.config import TaskArg, TaskConfig
from perfgate.config._model import SECTIONS

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
    + [("argument key", f.name) for f in attrs.fields(TaskArg)],
)
def test_every_task_and_argument_key_is_in_the_readme(table: str, key: str) -> None:
    start = README.index(f"| {table}")
    rows = README[start:].split("\n\n", 1)[0]
    assert f"`{key}`" in rows
