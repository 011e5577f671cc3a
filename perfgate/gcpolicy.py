"""The garbage collector's settings for a long-lived server with many connections.

CPython's cyclic collector runs a young collection every 700 net allocations and, every
100 young ones, a full collection that walks *every* tracked object in the process. A
server holding 10,000 connections has millions of long-lived objects (each connection's
objects, trio's and trio-websocket's, and everything imported at start), and a reconnect
storm allocates fast: full collections then come every second or so and each stops the
event loop for a large fraction of a second. Measured for issue 16.4 (10,000 clients
reconnecting at once): the worst event-loop stall was 3.1 to 9.5 s with the defaults and
0.47 s with this policy.

The policy, applied once by the entry points (``perfgate serve`` and
``python -m perfgate.gateway``):

- :func:`tune` before the event loop starts: a young collection every :data:`THRESHOLDS`
  ``[0]`` allocations instead of 700 (the young generation is small either way: most of a
  request's objects are freed by reference counting, not by the collector), and full
  collections ten times rarer. Memory held by garbage *cycles* waits a little longer to be
  freed; nothing else changes.
- :func:`freeze` once the service is ready: everything alive after start-up (modules,
  configuration, the application's routes, the components) moves to the permanent
  generation, which no collection walks again. Those objects live for the whole process
  anyway; a later full collection then walks only what was made since.

Both are process-wide and idempotent; tests call :func:`restore` to undo them.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 10, 100)
"""``gc.set_threshold`` for the server (CPython's defaults are ``(700, 10, 10)``)."""


def tune(thresholds: tuple[int, int, int] = THRESHOLDS) -> tuple[int, int, int]:
    """Set the collector's thresholds; return the ones they replace."""
    before = gc.get_threshold()
    gc.set_threshold(*thresholds)
    return before


def freeze() -> int:
    """Collect what start-up left as garbage, then move every object still alive to the
    permanent generation; return how many objects are frozen in all."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def restore(thresholds: tuple[int, int, int]) -> None:
    """Undo :func:`tune` and :func:`freeze` (for tests and embedders)."""
    gc.unfreeze()
    gc.set_threshold(*thresholds)
