"""ByteLRU: the byte bound, LRU order and TTL, against a plain reference model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfgate.cache import ByteLRU

KEYS = st.sampled_from(["a", "b", "c", "d", "e", "f"])

ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), KEYS, st.binary(max_size=40), st.floats(0, 5)),
        st.tuples(st.just("get"), KEYS, st.just(b""), st.floats(0, 5)),
    ),
    max_size=60,
)


class Model:
    """The obvious, slow LRU: a list in recency order, oldest first."""

    def __init__(self, max_bytes: int, ttl_s: float) -> None:
        self.max_bytes, self.ttl_s = max_bytes, ttl_s
        self.items: list[tuple[str, bytes, float]] = []

    def size(self) -> int:
        return sum(len(k) + len(v) for k, v, _ in self.items)

    def get(self, key: str, now: float) -> bytes | None:
        for i, (k, v, exp) in enumerate(self.items):
            if k == key:
                del self.items[i]
                if now >= exp:
                    return None
                self.items.append((k, v, exp))
                return v
        return None

    def put(self, key: str, value: bytes, now: float) -> None:
        self.items = [item for item in self.items if item[0] != key]
        if len(key) + len(value) > self.max_bytes:
            return
        while self.size() + len(key) + len(value) > self.max_bytes:
            self.items.pop(0)
        self.items.append((key, value, now + self.ttl_s))


@settings(max_examples=300)
@given(st.integers(0, 120), st.floats(0.5, 10), ops)
def test_matches_model_and_never_exceeds_the_byte_bound(
    max_bytes: int, ttl_s: float, operations: list[tuple[str, str, bytes, float]]
) -> None:
    lru, model = ByteLRU(max_bytes, ttl_s), Model(max_bytes, ttl_s)
    now = 0.0
    for op, key, value, step in operations:
        now += step  # time only moves forward
        if op == "put":
            lru.put(key, value, now)
            model.put(key, value, now)
        else:
            assert lru.get(key, now) == model.get(key, now)
        assert lru.bytes <= max_bytes
        assert lru.bytes == model.size()
        assert len(lru) == len(model.items)


@given(st.lists(st.tuples(KEYS, st.binary(max_size=30)), max_size=40), st.integers(0, 100))
def test_counters_add_up(puts: list[tuple[str, bytes]], max_bytes: int) -> None:
    lru = ByteLRU(max_bytes, 10.0)
    for key, value in puts:
        lru.put(key, value, 0.0)
    stored = sum(1 for key, value in puts if len(key) + len(value) <= max_bytes)
    overwrites = stored - len(lru) - lru.evictions
    assert overwrites >= 0
    assert lru.rejected == len(puts) - stored


def test_ttl_expiry_is_a_miss() -> None:
    lru = ByteLRU(100, ttl_s=10)
    lru.put("k", b"v", now=0)
    assert lru.get("k", now=9.999) == b"v"
    assert lru.get("k", now=10) is None
    assert "k" not in lru
    assert (lru.hits, lru.misses, lru.expirations, lru.bytes) == (1, 1, 1, 0)


def test_per_entry_ttl_and_purge() -> None:
    lru = ByteLRU(100, ttl_s=10)
    lru.put("short", b"v", now=0, ttl_s=1)
    lru.put("long", b"v", now=0)
    assert not lru.put("dead", b"v", now=0, ttl_s=0)
    assert lru.purge_expired(now=5) == 1
    assert lru.stats().expirations == 1
    assert "long" in lru
    assert "short" not in lru


def test_least_recently_used_goes_first() -> None:
    lru = ByteLRU(max_bytes=6, ttl_s=100)  # three 2-byte entries
    for key in "abc":
        lru.put(key, b"x", now=0)
    lru.get("a", now=1)  # a is now the most recent
    lru.put("d", b"x", now=2)
    assert "b" not in lru
    assert all(key in lru for key in "acd")
    assert lru.evictions == 1


def test_too_big_is_refused_and_evicts_nothing() -> None:
    lru = ByteLRU(max_bytes=10, ttl_s=100)
    lru.put("a", b"1234", now=0)
    assert not lru.put("b", b"x" * 10, now=0)
    assert "a" in lru
    assert lru.rejected == 1


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        ByteLRU(-1, 1)
    with pytest.raises(ValueError):
        ByteLRU(1, 0)
