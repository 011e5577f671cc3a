"""Built-in tasks, enabled by default so that a fresh ``make run`` does real work.

A task is ``fn(ctx, **args) -> JSON-serialisable``; ``ctx.progress(fraction, message)`` and
``ctx.log(line)`` stream events to subscribers while it runs.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Protocol


class TaskContext(Protocol):
    def progress(self, fraction: float, message: str = "") -> None: ...
    def log(self, line: str) -> None: ...


def echo(ctx: TaskContext, **args: Any) -> dict[str, Any]:
    """Return the arguments unchanged."""
    return args


def sleep(ctx: TaskContext, seconds: float = 1.0, steps: int = 10) -> dict[str, float]:
    """Sleep ``seconds``, reporting progress ``steps`` times."""
    seconds = float(seconds)
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    steps = max(1, int(steps))
    for i in range(steps):
        time.sleep(seconds / steps)
        ctx.progress((i + 1) / steps, f"slept {(i + 1) * seconds / steps:.3f}s")
    return {"slept_s": seconds}


def sha256(ctx: TaskContext, data: str = "", rounds: int = 1) -> dict[str, Any]:
    """Hash ``data`` ``rounds`` times (each round hashes the previous digest): CPU work."""
    rounds = int(rounds)
    if not 1 <= rounds <= 10_000_000:
        raise ValueError("rounds must be between 1 and 10,000,000")
    digest = str(data).encode()
    report_every = max(1, rounds // 10)
    for i in range(rounds):
        digest = hashlib.sha256(digest).digest()
        if (i + 1) % report_every == 0:
            ctx.progress((i + 1) / rounds)
    return {"hex": digest.hex(), "rounds": rounds}
