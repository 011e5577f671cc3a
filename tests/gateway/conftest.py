from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from perfgate.auth import Authenticator
from perfgate.broker import MemoryHub
from perfgate.config import GatewayConfig
from perfgate.gateway import CloseInfo, Gateway

TOKENS = {
    "sub-token-123": ("subscribe",),
    "pub-token-123": ("subscribe", "publish"),
    "adm-token-123": ("admin",),
    "sub-only-publish": ("publish",),
}


async def eventually(predicate: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Wait until ``predicate()`` holds (state owned by the server or another process,
    with no event to wait on), failing after ``limit_s``."""
    with trio.fail_after(limit_s):
        while not predicate():  # noqa: ASYNC110 - polling foreign state on purpose
            await trio.sleep(0.01)


Start = Callable[..., Awaitable[tuple[Gateway, str]]]


@pytest.fixture
def closes() -> list[CloseInfo]:
    return []


@pytest.fixture
async def start_gateway(nursery: trio.Nursery, closes: list[CloseInfo]) -> Start:
    """Start a Gateway on a free loopback port; returns (gateway, "ws://host:port")."""

    async def start(
        *, tokens: dict[str, tuple[str, ...]] | None = None, hub: Any = None, **overrides: Any
    ) -> tuple[Gateway, str]:
        overrides.setdefault("heartbeat_min_s", 5.0)
        config = GatewayConfig(bind="127.0.0.1:0", **overrides)
        if hub is None:
            hub = MemoryHub(config.history_size, config.history_ttl_s, clock=trio.current_time)
        gateway = Gateway(config, hub, Authenticator(tokens or {}), on_close=closes.append)
        url = await nursery.start(gateway.run)
        return gateway, url

    return start
