"""The data directory's lock (perfgate.store.lock): one holder at a time, the second told
who holds it, and the lock gone with its holder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perfgate.errors import ConfigError
from perfgate.store.lock import FILENAME, hold_data_dir


def test_a_second_holder_is_refused_and_told_the_first_ones_pid(tmp_path: Path) -> None:
    with hold_data_dir(tmp_path) as path:
        assert path == tmp_path / FILENAME
        assert path.read_text() == f"{os.getpid()}\n"
        # flock belongs to an open file: a second open, even in this process, is refused.
        in_use = rf"in use by another perfgate \(pid {os.getpid()}\)"
        with pytest.raises(ConfigError, match=in_use), hold_data_dir(tmp_path):
            pass


def test_the_lock_is_released_on_exit_even_by_an_exception(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), hold_data_dir(tmp_path):
        raise RuntimeError("boom")
    with hold_data_dir(tmp_path):
        pass
    assert (tmp_path / FILENAME).exists()  # the file stays: removing it would race


def test_a_missing_directory_is_one_config_error(tmp_path: Path) -> None:
    missing = r"^\[store\] data_dir .*nope.*: No such file"
    with pytest.raises(ConfigError, match=missing), hold_data_dir(tmp_path / "nope"):
        pass
