"""The result cache's L2 tier: byte strings on disk, bounded, through ``diskcache``.

Blocking (SQLite and file I/O); no trio here. :class:`perfgate.cache.ResultCache` calls it
through ``trio.to_thread``. It is safe to call from several threads at once: ``diskcache``
gives each thread its own SQLite connection, and the counters are under a lock.

Why ``diskcache`` rather than files we manage: it already does the hard parts we would
otherwise re-write and get wrong: atomic writes, a size bound with eviction, expiry, and
concurrent access from threads and processes, on top of SQLite. We store only ``bytes``,
so it never unpickles anything it reads back.

Every value is wrapped in an envelope (a magic prefix and the payload's sha256): a
truncated, overwritten or otherwise corrupted entry is detected, deleted and reported as a
miss (and counted in ``errors``), never returned.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import diskcache

from perfgate.snapshots import DiskTierStats

log = logging.getLogger("perfgate.cache")

MAGIC = b"PGC1"
_DIGEST_LEN = 32
#: An entry may use at most this fraction of the tier. ``diskcache`` culls the ten oldest
#: entries at a time when over its bound, so at least sixteen entries must fit, or one cull
#: would empty the tier (the entry just stored included).
MAX_ENTRY_FRACTION = 16


def wrap(payload: bytes) -> bytes:
    return MAGIC + hashlib.sha256(payload).digest() + payload


def unwrap(blob: object) -> bytes | None:
    """The payload, or ``None`` if ``blob`` is not an intact envelope."""
    if not isinstance(blob, bytes) or not blob.startswith(MAGIC):
        return None
    digest = blob[len(MAGIC) : len(MAGIC) + _DIGEST_LEN]
    payload = blob[len(MAGIC) + _DIGEST_LEN :]
    if len(digest) != _DIGEST_LEN or hashlib.sha256(payload).digest() != digest:
        return None
    return payload


class DiskTier:
    """A bounded on-disk map from string keys to bytes, with per-entry expiry.

    The bound is ``diskcache``'s ``size_limit``: the SQLite file plus the value files. It is
    enforced on each write by evicting the least recently *stored* entries (so reads stay
    reads, with no write to refresh an access time). It is approximate: the last write can
    leave it over by about one entry until the next write culls, and a bound below the
    empty database's size (some tens of KiB) cannot be met. A value bigger than
    ``max_bytes / MAX_ENTRY_FRACTION`` is refused (counted in ``rejected``).
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._cache = _open(directory, max_bytes)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.errors = 0
        self.rejected = 0
        self.max_entry_bytes = max_bytes // MAX_ENTRY_FRACTION
        self.bytes = self._cache.volume()
        self.entries = len(self._cache)

    def get(self, key: str) -> tuple[bytes, float | None] | None:
        """``(payload, expires_at)`` (epoch seconds, ``None`` = never), or ``None`` for a miss.
        An unreadable or corrupted entry is a miss: it is deleted and counted in ``errors``."""
        try:
            blob, expires_at = self._cache.get(key, default=None, expire_time=True, retry=True)
        except (OSError, sqlite3.Error, diskcache.Timeout) as exc:
            log.warning("cache L2 read failed: %s", exc)
            self._count(misses=1, errors=1)
            return None
        if blob is None:
            self._count(misses=1)
            return None
        payload = unwrap(blob)
        if payload is None:
            log.warning("cache L2 entry %s is corrupted; dropping it", key)
            self._discard(key)
            self._count(misses=1, errors=1)
            return None
        self._count(hits=1)
        return payload, expires_at

    def put(self, key: str, payload: bytes, ttl_s: float) -> bool:
        """Store ``payload`` for ``ttl_s`` seconds; ``False`` (counted in ``errors``) if the
        disk refused it, or it is too big for the tier (counted in ``rejected``)."""
        if len(payload) + len(key) + len(MAGIC) + _DIGEST_LEN > self.max_entry_bytes:
            with self._lock:
                self.rejected += 1
            return False
        try:
            before = len(self._cache)
            existed = key in self._cache
            self._cache.set(key, wrap(payload), expire=ttl_s, retry=True)
            after = len(self._cache)
            volume = self._cache.volume()
        except (OSError, sqlite3.Error, diskcache.Timeout) as exc:
            log.warning("cache L2 write failed: %s", exc)
            self._count(errors=1)
            return False
        # Entries culled by this write (size bound or expiry) show as a smaller count.
        evicted = max(0, before + (0 if existed else 1) - after)
        with self._lock:
            self.evictions += evicted
            self.bytes = volume
            self.entries = after
        return True

    def _discard(self, key: str) -> None:
        try:
            self._cache.delete(key, retry=True)
        except (OSError, sqlite3.Error, diskcache.Timeout) as exc:
            log.warning("cache L2 could not drop entry %s: %s", key, exc)

    def _count(self, *, hits: int = 0, misses: int = 0, errors: int = 0) -> None:
        with self._lock:
            self.hits += hits
            self.misses += misses
            self.errors += errors

    def entry_path(self, key: str) -> Path | None:
        """The file holding ``key``'s value, if it is stored in a file (tests use this)."""
        row = self._cache._sql(  # diskcache has no public accessor for the file name
            "SELECT filename FROM Cache WHERE key = ? AND raw = 1", (key,)
        ).fetchone()
        return None if row is None or row[0] is None else self.directory / row[0]

    def volume(self) -> int:
        return int(self._cache.volume())

    def close(self) -> None:
        self._cache.close()

    def stats(self) -> DiskTierStats:
        with self._lock:
            return DiskTierStats(
                hits=self.hits,
                misses=self.misses,
                evictions=self.evictions,
                errors=self.errors,
                rejected=self.rejected,
                bytes=self.bytes,
                entries=self.entries,
                max_bytes=self.max_bytes,
            )


def _open(directory: Path, max_bytes: int) -> Any:
    settings = {
        "size_limit": max_bytes,
        "eviction_policy": "least-recently-stored",
        "statistics": 0,
    }
    try:
        return diskcache.Cache(str(directory), **settings)
    except (sqlite3.DatabaseError, OSError) as exc:
        # The directory is ours and holds only re-computable results: start it afresh
        # rather than running without a disk tier (or refusing to start).
        log.warning("cache L2 at %s is unreadable (%s); starting it afresh", directory, exc)
        shutil.rmtree(directory, ignore_errors=True)
        return diskcache.Cache(str(directory), **settings)
