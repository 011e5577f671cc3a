"""A least-recently-used map of byte strings, bounded in bytes, with a time-to-live.

Pure: no I/O, no trio; time is an argument. The result cache's L1 tier is one of these.

An entry costs ``len(key) + len(value)`` bytes of budget (the key is a 64-character digest,
so the Python object overhead of a few hundred bytes per entry is not counted: budget
accordingly). ``bytes`` never exceeds ``max_bytes``: a value too big to fit on its own is
refused (counted in ``rejected``) rather than evicting everything else for nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from perfgate.snapshots import MemoryTierStats


class _Entry(NamedTuple):
    value: bytes
    expires_at: float
    size: int


class ByteLRU:
    """``get``/``put`` by string key; ``now`` is seconds on any clock, the same one each call.

    Counters: ``hits``, ``misses`` (expired entries count as misses, and also as
    ``expirations``), ``evictions`` (entries pushed out to make room), ``rejected``.
    """

    def __init__(self, max_bytes: int, ttl_s: float) -> None:
        if max_bytes < 0 or ttl_s <= 0:
            raise ValueError("max_bytes must be >= 0 and ttl_s > 0")
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: str, now: float) -> bytes | None:
        """The value, marked most recently used; ``None`` when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if now >= entry.expires_at:
            self._remove(key)
            self.expirations += 1
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.value

    def put(self, key: str, value: bytes, now: float, *, ttl_s: float | None = None) -> bool:
        """Store ``value`` for ``ttl_s`` (default: the map's TTL), evicting the least recently
        used entries as needed. Returns ``False`` (and stores nothing, dropping any older
        value for ``key``) when the entry alone is bigger than ``max_bytes`` or ``ttl_s`` is
        not positive."""
        ttl = self.ttl_s if ttl_s is None else ttl_s
        size = len(key) + len(value)
        if key in self._entries:
            self._remove(key)
        if size > self.max_bytes or ttl <= 0:
            self.rejected += 1
            return False
        while self.bytes + size > self.max_bytes:
            oldest = next(iter(self._entries))
            self._remove(oldest)
            self.evictions += 1
        self._entries[key] = _Entry(value, now + ttl, size)
        self.bytes += size
        return True

    def delete(self, key: str) -> bool:
        if key not in self._entries:
            return False
        self._remove(key)
        return True

    def purge_expired(self, now: float) -> int:
        """Drop every expired entry (O(n)); returns how many. Not needed for the byte bound,
        which holds regardless, but it frees memory held by entries nobody asks for."""
        expired = [key for key, entry in self._entries.items() if now >= entry.expires_at]
        for key in expired:
            self._remove(key)
        self.expirations += len(expired)
        return len(expired)

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key)
        self.bytes -= entry.size

    def stats(self) -> MemoryTierStats:
        return MemoryTierStats(
            hits=self.hits,
            misses=self.misses,
            evictions=self.evictions,
            expirations=self.expirations,
            rejected=self.rejected,
            bytes=self.bytes,
            entries=len(self._entries),
            max_bytes=self.max_bytes,
        )
