"""The priorities of a job or a channel message, highest first: the one definition that the
configuration, the request schemas, the pool's queue, the hub, the Redis streams and the
metrics read."""

from __future__ import annotations

from typing import Final

PRIORITIES: Final[tuple[str, ...]] = ("high", "normal", "low")
