"""The backend factory: each mode builds its own parts, and the memory mode loads no Redis."""

import subprocess
import sys
from pathlib import Path

import trio

from perfgate.backend import open_backend
from perfgate.broker import MemoryHub
from perfgate.config import load_config
from perfgate.jobs.queue import LocalQueue
from perfgate.readiness import Readiness
from perfgate.store import Journal


class _Pool:
    """The queues only keep the pool until they run jobs on it."""


def _config(tmp_path: Path, broker: str):
    overrides = {"server": {"broker": broker}, "store": {"data_dir": str(tmp_path)}}
    return load_config(None, env={}, overrides=overrides)


async def test_memory_mode_is_a_memory_hub_the_sqlite_journal_and_the_pools_queue(
    tmp_path: Path,
) -> None:
    async with open_backend(_config(tmp_path, "memory://"), Readiness()) as backend:
        assert backend.kind == "memory"
        assert isinstance(backend.hub, MemoryHub) and isinstance(backend.journal, Journal)
        assert backend.queue is None
        queue = backend.attach_pool(_Pool())  # type: ignore[arg-type]
        assert isinstance(queue, LocalQueue) and backend.queue is queue
        assert backend.queue_run is None and backend.sources == {}
        assert (tmp_path / "journal.sqlite3").exists()


async def test_redis_mode_shares_one_redis_between_hub_journal_and_queue(
    tmp_path: Path, redis_url: str
) -> None:
    from perfgate.redis import RedisHub, RedisJobQueue, RedisJournal

    readiness = Readiness()
    async with open_backend(_config(tmp_path, redis_url), readiness) as backend:
        assert backend.kind == "redis"
        assert isinstance(backend.hub, RedisHub) and isinstance(backend.journal, RedisJournal)
        queue = backend.attach_pool(_Pool())  # type: ignore[arg-type]
        assert isinstance(queue, RedisJobQueue) and queue.journal is backend.journal
        assert backend.queue_run == queue.run and backend.sources["queue"] == queue.stats
        assert not (tmp_path / "journal.sqlite3").exists()
        async with trio.open_nursery() as nursery:
            await backend.start_hub(nursery)  # returns once connected
            assert backend.hub.stats()["connected"] and not readiness.dependencies_down
            nursery.cancel_scope.cancel()


def test_the_memory_mode_does_not_import_coredis(tmp_path: Path) -> None:
    script = f"""
import sys, trio
import perfgate.cli, perfgate.supervisor
from perfgate.backend import open_backend
from perfgate.config import load_config
from perfgate.readiness import Readiness

async def main():
    overrides = {{"store": {{"data_dir": {str(tmp_path)!r}}}}}
    async with open_backend(load_config(None, env={{}}, overrides=overrides), Readiness()):
        pass

trio.run(main)
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "coredis" or m.startswith("perfgate.redis"))
assert not loaded, loaded
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
