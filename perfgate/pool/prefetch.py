"""When a job may be sent ahead to a busy worker (prefetch). Pure: no I/O, no trio.

A worker runs its jobs in the order it received them, so a job sent ahead waits for the ones
already there even if another worker frees up meanwhile. That is worth it only for short
jobs, where the round trip saved is a large share of the cost: a prefetched job never waits
behind more than one job of at most :data:`MAX_RUN_S`, or behind a queue expected to take at
most :data:`MAX_AHEAD_S` in all (several very short jobs: each write and each read then carries
several frames, which on a no-op job cut the server's CPU per job by about a fifth).
Expected run times are the pool's running means per task.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_FRAME_BYTES = 16 * 1024
"""Only small frames go ahead (a big one is sent when its worker is free)."""
MAX_RUN_S = 0.05
"""A job is short if its task's mean run time is at most this."""
MAX_AHEAD_S = 0.002
"""More than one job ahead only while they are expected to take at most this in all."""
MAX_DEPTH = 8
"""At most this many jobs on one worker (the running one included)."""


def is_short(mean_run_s: float | None) -> bool:
    """Whether a task with this mean run time (None: never run yet) counts as short."""
    return mean_run_s is not None and mean_run_s <= MAX_RUN_S


def may_queue_behind(ahead_s: Sequence[float]) -> bool:
    """Whether a short job may join a worker that has jobs expected to take ``ahead_s``
    (running one first; ``inf`` for one not known to be short)."""
    depth = len(ahead_s)
    if depth == 0 or depth >= MAX_DEPTH:
        return False
    if depth == 1:
        return ahead_s[0] <= MAX_RUN_S
    return sum(ahead_s) <= MAX_AHEAD_S
