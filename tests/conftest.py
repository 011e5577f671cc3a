"""Shared fixtures: a real service in-process on free loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from perfgate.config import Config, TaskConfig, load_config
from perfgate.supervisor import Bound, Supervisor
from tests.redis_server import RedisServer


def make_config(
    tmp_path: Path, *, tasks: dict[str, TaskConfig] | None = None, **sections: dict[str, Any]
) -> Config:
    """A config bound to free loopback ports with data under ``tmp_path``; ``tasks`` are added
    to the built-in ones."""
    overrides: dict[str, dict[str, Any]] = {
        "http": {"bind": "127.0.0.1:0"},
        "gateway": {"bind": "127.0.0.1:0"},
        "store": {"data_dir": str(tmp_path / "data")},
        "pool": {"drain_timeout_s": 5.0},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    config = load_config(None, env={}, overrides=overrides)
    if tasks:
        config = attrs.evolve(config, tasks={**config.tasks, **tasks})
    return config


class RunningService:
    def __init__(self, supervisor: Supervisor, bound: Bound, nursery: trio.Nursery) -> None:
        self.supervisor = supervisor
        self.bound = bound
        self.nursery = nursery

    @property
    def http(self) -> str:
        return self.bound.http

    @property
    def ws(self) -> str:
        return self.bound.ws


@pytest.fixture
async def service_factory(tmp_path: Path) -> AsyncIterator[Any]:
    """Start services in-process; each is cancelled (not drained) at the end of the test.

    Each service gets a data directory of its own (one server per data_dir: the second would
    be refused), unless the test names one in ``store``."""
    started = 0
    async with trio.open_nursery() as nursery:

        async def start(
            *, tasks: dict[str, TaskConfig] | None = None, **sections: dict[str, Any]
        ) -> RunningService:
            nonlocal started
            started += 1
            home = tmp_path if started == 1 else tmp_path / f"service-{started}"
            config = make_config(home, tasks=tasks, **sections)
            supervisor = Supervisor(config, handle_signals=False)
            bound = await nursery.start(supervisor.run)
            return RunningService(supervisor, bound, nursery)

        yield start
        nursery.cancel_scope.cancel()


@pytest.fixture
async def service(service_factory: Any) -> RunningService:
    return await service_factory()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A fresh ``redis-server`` for the test module (no persistence, free port)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The module's Redis, running and empty at the start of the test."""
    if redis_server.proc is None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url
