"""Token buckets: pure bookkeeping with time passed in, shared by HTTP (per client) and the
gateway (per connection).

A bucket holds up to ``burst`` tokens and refills at ``rate_per_s``. :class:`KeyedBuckets` keeps
one bucket per client in a bounded LRU map, so a flood of distinct clients cannot grow memory
without limit (the least recently seen client's bucket is forgotten, which only ever *helps*
that client: a fresh bucket is full).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import attrs


@attrs.define
class TokenBucket:
    rate_per_s: float
    burst: float
    tokens: float = attrs.field(default=math.nan)
    updated_at: float = attrs.field(default=math.nan)

    def __attrs_post_init__(self) -> None:
        if math.isnan(self.tokens):
            self.tokens = float(self.burst)

    def _refill(self, now: float) -> None:
        if not math.isnan(self.updated_at) and now > self.updated_at:
            self.tokens = min(self.burst, self.tokens + (now - self.updated_at) * self.rate_per_s)
        if math.isnan(self.updated_at) or now > self.updated_at:
            self.updated_at = now

    def wait_s(self, now: float, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are there (0.0: now), taking none."""
        if self.rate_per_s <= 0:
            return 0.0
        self._refill(now)
        return max(0.0, (cost - self.tokens) / self.rate_per_s)

    def reserve(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens now even if they are not there yet (the bucket goes into
        debt, which later refills pay first). Returns the seconds until they would have been
        there (0.0: they were): how long a caller that reserved should wait for its turn."""
        wait_s = self.wait_s(now, cost)
        if self.rate_per_s > 0:
            self.tokens -= cost
        return wait_s

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens. Returns 0.0 on success, else seconds until it would succeed.

        A rate of 0 means "no limit" (as in configuration): every take succeeds.
        """
        if self.rate_per_s <= 0:
            return 0.0
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate_per_s


@attrs.define
class KeyedBuckets:
    """One bucket per key (client address), at most ``max_keys`` remembered."""

    rate_per_s: float
    burst: float
    max_keys: int = 100_000
    _buckets: OrderedDict[str, TokenBucket] = attrs.field(factory=OrderedDict)

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def take(self, key: str, now: float, cost: float = 1.0) -> float:
        """As :meth:`TokenBucket.take`; always 0.0 when rate limiting is off."""
        if not self.enabled:
            return 0.0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_s, self.burst)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now, cost)

    def __len__(self) -> int:
        return len(self._buckets)
