"""The journal the job tests share: a real SQLite journal under the test's ``tmp_path``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from perfgate.store import Journal


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    async with Journal.open(tmp_path / "data", max_log_lines=100, result_ttl_s=60) as opened:
        yield opened
