from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pool_helpers import Events, fast_config, make_tasks

from perfgate.pool import Pool


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
async def pool(events: Events) -> AsyncIterator[Pool]:
    async with Pool(fast_config(), make_tasks(), on_event=events) as p:
        yield p
