"""The result cache: same task and canonical args → the stored result, without a re-run.

Two tiers: L1 in memory (:class:`~perfgate.cache.lru.ByteLRU`, bounded in bytes, with TTL)
and L2 on disk (:class:`~perfgate.cache._disk.DiskTier`, bounded, same TTL); an L2 hit is
promoted to L1 for what is left of its TTL. Results are stored as canonical JSON bytes, so
every hit hands out a fresh object (a caller mutating it cannot change the cache) and the
byte bound counts what is really held.

Only for tasks configured ``cacheable = true``: the caller decides that, and marks the job
``"cached": true`` when :meth:`ResultCache.get` finds a result.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import trio

from perfgate.cache._disk import DiskTier
from perfgate.cache.lru import ByteLRU
from perfgate.config import CacheConfig
from perfgate.errors import ValidationError
from perfgate.snapshots import CacheSnapshot
from perfgate.store.fingerprint import canonical_json, digest

log = logging.getLogger("perfgate.cache")

L2_DIRNAME = "cache"


class ResultCache:
    """``async with ResultCache(config.cache, data_dir) as cache``.

    ``memory_bytes = 0`` disables L1 and ``disk_bytes = 0`` disables L2. ``clock`` drives L1
    expiry (epoch seconds; L2 expiry is ``diskcache``'s, on the wall clock).

    ``get`` and ``put`` are checkpoints. An L2 call runs in a worker thread and is not
    cancellable while it runs (it is a short SQLite/file operation); if ``get`` is
    cancelled, no promotion happens; if ``put`` is cancelled, the result may or may not
    have reached L2.
    """

    def __init__(
        self, config: CacheConfig, data_dir: Path, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.directory = data_dir / L2_DIRNAME
        self._clock = clock
        self._l1 = ByteLRU(config.memory_bytes, config.ttl_s) if config.memory_bytes else None
        self._l2: DiskTier | None = None

    async def __aenter__(self) -> ResultCache:
        if self.config.disk_bytes:
            self._l2 = await trio.to_thread.run_sync(
                DiskTier, self.directory, self.config.disk_bytes
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._l2 is not None:
            # Synchronous and brief; it must run even when we exit by cancellation.
            self._l2.close()
            self._l2 = None

    @staticmethod
    def key(task: str, args: Any) -> str:
        """sha256 (hex) of the compact, sorted-keys JSON of ``[task, args]``: the same for
        any key order or spacing of ``args``. Raises ValidationError for non-JSON args."""
        return digest([task, args])

    async def get(self, task: str, args: Any, default: Any = None) -> Any:
        """The cached result of ``task(**args)``, or ``default`` on a miss.

        A task may legitimately return ``null``: pass a sentinel as ``default`` to tell a
        cached ``None`` from a miss.
        """
        await trio.lowlevel.checkpoint()
        try:
            key = self.key(task, args)
        except ValidationError:
            return default
        if self._l1 is not None:
            payload = self._l1.get(key, self._clock())
            if payload is not None:
                return json.loads(payload)
        if self._l2 is None:
            return default
        found = await trio.to_thread.run_sync(self._l2.get, key)
        if found is None:
            return default
        payload, expires_at = found
        if self._l1 is not None:
            remaining = None if expires_at is None else expires_at - time.time()
            ttl = self.config.ttl_s if remaining is None else min(self.config.ttl_s, remaining)
            self._l1.put(key, payload, self._clock(), ttl_s=ttl)
        return json.loads(payload)

    async def put(self, task: str, args: Any, result: Any) -> bool:
        """Remember ``result`` for ``config.ttl_s`` in both tiers. ``False`` when it was not
        stored anywhere (not JSON, or bigger than both tiers, or the disk refused it)."""
        await trio.lowlevel.checkpoint()
        try:
            key = self.key(task, args)
            payload = canonical_json(result)
        except ValidationError as exc:
            log.warning("not caching a %s result: %s", task, exc.message)
            return False
        stored = False
        if self._l1 is not None:
            stored = self._l1.put(key, payload, self._clock())
        if self._l2 is not None:
            stored = (
                await trio.to_thread.run_sync(self._l2.put, key, payload, self.config.ttl_s)
                or stored
            )
        return stored

    def stats(self) -> CacheSnapshot:
        """Per tier: hits, misses, evictions, bytes, entries, max_bytes (and L1 expirations
        and rejected, L2 errors); ``None`` for a disabled tier."""
        return CacheSnapshot(
            l1=None if self._l1 is None else self._l1.stats(),
            l2=None if self._l2 is None else self._l2.stats(),
        )

    @property
    def disk(self) -> DiskTier | None:
        """The L2 tier (for tests and diagnostics)."""
        return self._l2
