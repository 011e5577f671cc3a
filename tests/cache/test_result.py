"""ResultCache: two tiers, promotion, bounds, counters, and damaged entries read as misses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio

from perfgate.cache import ResultCache
from perfgate.config import CacheConfig
from perfgate.snapshots import CacheSnapshot

MISS = object()


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def config(
    memory_bytes: int = 1 << 20, disk_bytes: int = 8 << 20, ttl_s: float = 60.0
) -> CacheConfig:
    return CacheConfig(memory_bytes=memory_bytes, disk_bytes=disk_bytes, ttl_s=ttl_s)


def test_key_is_canonical() -> None:
    assert ResultCache.key("t", {"a": 1, "b": [1, 2]}) == ResultCache.key(
        "t", {"b": [1, 2], "a": 1}
    )
    assert ResultCache.key("t", {"a": 1}) != ResultCache.key("u", {"a": 1})
    assert ResultCache.key("t", {"a": 1}) != ResultCache.key("t", {"a": "1"})
    assert len(ResultCache.key("t", {})) == 64


async def test_miss_put_hit_in_l1(tmp_path: Path) -> None:
    async with ResultCache(config(), tmp_path) as cache:
        assert await cache.get("sha256", {"data": "x"}) is None
        assert await cache.put("sha256", {"data": "x"}, {"digest": "abc"})
        hit = await cache.get("sha256", {"data": "x"})
        assert hit == {"digest": "abc"}
        hit["digest"] = "mutated"  # a caller's change does not reach the cache
        assert await cache.get("sha256", {"data": "x"}) == {"digest": "abc"}
        stats = cache.stats()
    assert stats.l1 is not None and stats.l2 is not None
    assert (stats.l1.hits, stats.l1.misses) == (2, 1)
    assert (stats.l2.hits, stats.l2.misses) == (0, 1)
    assert stats.l1.entries == 1 and stats.l2.entries == 1


async def test_a_cached_none_is_not_a_miss(tmp_path: Path) -> None:
    async with ResultCache(config(), tmp_path) as cache:
        assert await cache.get("t", {}, MISS) is MISS
        await cache.put("t", {}, None)
        assert await cache.get("t", {}, MISS) is None


async def test_l1_expiry_falls_back_to_l2_and_promotes(tmp_path: Path) -> None:
    clock = Clock()
    async with ResultCache(config(ttl_s=60), tmp_path, clock=clock) as cache:
        await cache.put("t", {"n": 1}, [1, 2, 3])
        clock.now += 61  # L1's clock says expired; L2 (wall clock) still holds it
        assert await cache.get("t", {"n": 1}) == [1, 2, 3]
        stats = cache.stats()
        assert stats.l1 is not None and stats.l2 is not None
        assert stats.l1.expirations == 1
        assert stats.l2.hits == 1
        assert await cache.get("t", {"n": 1}) == [1, 2, 3]  # promoted: now an L1 hit
        assert cache.stats().l1.hits == 1
        assert cache.stats().l2.hits == 1


async def test_l1_eviction_then_promotion(tmp_path: Path) -> None:
    async with ResultCache(config(memory_bytes=300), tmp_path) as cache:
        for i in range(10):
            await cache.put("t", {"i": i}, "x" * 100)
        stats = cache.stats().l1
        assert stats is not None
        assert stats.bytes <= 300
        assert stats.evictions >= 7
        key0 = cache.key("t", {"i": 0})
        assert await cache.get("t", {"i": 0}) == "x" * 100  # from L2
        assert cache.stats().l2.hits == 1
        assert await cache.get("t", {"i": 0}) == "x" * 100  # from L1
        assert cache.stats().l1.hits == 1
        assert key0 in cache._l1  # type: ignore[operator]


async def test_l2_is_bounded(tmp_path: Path) -> None:
    disk_bytes = 1024 * 1024
    value = "y" * 40_000  # over diskcache's 32 KiB inline limit: one file per entry
    async with ResultCache(config(memory_bytes=0, disk_bytes=disk_bytes), tmp_path) as cache:
        for i in range(60):  # ~2.4 MB offered
            await cache.put("t", {"i": i}, value)
        assert cache.disk is not None
        volume = cache.disk.volume()
        stats = cache.stats().l2
    assert stats is not None
    assert volume <= disk_bytes + 2 * 40_100  # over by at most about one entry
    assert stats.evictions > 0
    assert stats.entries < 60
    files = [p for p in (tmp_path / "cache").rglob("*.val")]
    assert len(files) == stats.entries


async def test_l2_survives_a_restart(tmp_path: Path) -> None:
    async with ResultCache(config(), tmp_path) as cache:
        await cache.put("t", {"a": 1}, {"ok": True})
    async with ResultCache(config(), tmp_path) as cache:
        assert await cache.get("t", {"a": 1}) == {"ok": True}


async def test_corrupted_file_entry_is_a_miss_and_dropped(tmp_path: Path) -> None:
    async with ResultCache(config(memory_bytes=0), tmp_path) as cache:
        await cache.put("t", {"a": 1}, "z" * 50_000)
        assert cache.disk is not None
        path = cache.disk.entry_path(cache.key("t", {"a": 1}))
        assert path is not None
        data = bytearray(path.read_bytes())
        data[-10] ^= 0xFF  # one flipped byte in the payload
        path.write_bytes(bytes(data))
        assert await cache.get("t", {"a": 1}, MISS) is MISS
        stats = cache.stats().l2
        assert stats is not None and stats.errors == 1 and stats.hits == 0
        assert cache.disk.entry_path(cache.key("t", {"a": 1})) is None  # dropped


async def test_deleted_or_truncated_file_is_a_miss(tmp_path: Path) -> None:
    async with ResultCache(config(memory_bytes=0), tmp_path) as cache:
        assert cache.disk is not None
        await cache.put("t", {"a": 1}, "z" * 50_000)
        await cache.put("t", {"a": 2}, "z" * 50_000)
        first = cache.disk.entry_path(cache.key("t", {"a": 1}))
        second = cache.disk.entry_path(cache.key("t", {"a": 2}))
        assert first is not None and second is not None
        first.unlink()
        second.write_bytes(second.read_bytes()[:100])
        assert await cache.get("t", {"a": 1}, MISS) is MISS
        assert await cache.get("t", {"a": 2}, MISS) is MISS
        await cache.put("t", {"a": 1}, "fresh")  # and the key works again
        assert await cache.get("t", {"a": 1}) == "fresh"


async def test_corrupted_inline_entry_is_a_miss(tmp_path: Path) -> None:
    async with ResultCache(config(memory_bytes=0), tmp_path) as cache:
        await cache.put("t", {"a": 1}, "small")
        conn = sqlite3.connect(tmp_path / "cache" / "cache.db")
        with conn:
            conn.execute("UPDATE Cache SET value = ?", (b"garbage",))
        conn.close()
        assert await cache.get("t", {"a": 1}, MISS) is MISS
        assert cache.stats().l2.errors == 1


async def test_unreadable_l2_database_is_started_afresh(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "cache.db").write_bytes(b"this is not a database" * 100)
    async with ResultCache(config(), tmp_path) as cache:
        assert await cache.get("t", {}, MISS) is MISS
        assert await cache.put("t", {}, 1)
        assert await cache.get("t", {}) == 1


async def test_disabled_tiers(tmp_path: Path) -> None:
    async with ResultCache(config(memory_bytes=0, disk_bytes=0), tmp_path) as cache:
        assert not await cache.put("t", {}, 1)
        assert await cache.get("t", {}) is None
        assert cache.stats() == CacheSnapshot(l1=None, l2=None)
    assert not (tmp_path / "cache").exists()


async def test_non_json_results_and_args_are_not_cached(tmp_path: Path) -> None:
    async with ResultCache(config(), tmp_path) as cache:
        assert not await cache.put("t", {}, float("nan"))
        assert not await cache.put("t", {"x": float("inf")}, 1)
        assert await cache.get("t", {"x": float("inf")}, MISS) is MISS


async def test_concurrent_use(tmp_path: Path) -> None:
    async with ResultCache(config(memory_bytes=2000), tmp_path) as cache:

        async def worker(n: int) -> None:
            for i in range(20):
                await cache.put("t", {"i": i % 7}, {"v": i % 7})
                found = await cache.get("t", {"i": (i + n) % 7}, MISS)
                assert found is MISS or found == {"v": (i + n) % 7}

        async with trio.open_nursery() as nursery:
            for n in range(4):
                nursery.start_soon(worker, n)
