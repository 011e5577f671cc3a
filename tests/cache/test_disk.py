"""The result cache's disk tier (perfgate.cache._disk): the integrity envelope, and the
tier's own bound and counters."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfgate.cache._disk import MAGIC, DiskTier, unwrap, wrap


@pytest.mark.parametrize("payload", [b"", b"x", b'{"a":1}', bytes(range(256)) * 10])
def test_the_envelope_round_trips(payload: bytes) -> None:
    assert unwrap(wrap(payload)) == payload


def test_a_damaged_envelope_is_none() -> None:
    blob = wrap(b"the result")
    assert unwrap(blob[:-1]) is None  # truncated
    assert unwrap(blob[:-1] + b"X") is None  # a flipped byte
    assert unwrap(blob[: len(MAGIC) + 5]) is None  # cut inside the digest
    assert unwrap(b"XXXX" + blob[4:]) is None  # not our magic
    assert unwrap("text") is None  # not bytes at all
    assert unwrap(None) is None


def test_disk_tier_counts_evictions_directly(tmp_path: Path) -> None:
    tier = DiskTier(tmp_path / "d", max_bytes=1024 * 1024)
    for i in range(80):
        assert tier.put(f"k{i}", b"v" * 40_000, ttl_s=60)
        assert tier.get(f"k{i}") is not None  # the newest entry is never the one culled
    stats = tier.stats()
    assert stats.evictions == 80 - stats.entries > 0
    assert not tier.put("huge", b"v" * (1024 * 1024 // 16), ttl_s=60)
    assert tier.stats().rejected == 1
    tier.close()
