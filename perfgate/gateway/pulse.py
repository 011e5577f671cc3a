"""One task for every connection's timers: the trio shell around
:class:`~perfgate.gateway.heartbeat.TimerQueue`.

A sleeping task per connection for its heartbeat cost memory (a task, a coroutine frame, a
cancel scope) and a wake-up per connection per interval; one scheduler holds a heap entry
per connection instead, and wakes at the earliest deadline.
"""

from __future__ import annotations

import logging
import math
import random
from typing import Protocol

import trio

from perfgate.gateway.heartbeat import GRID_S, Timer, TimerQueue, on_grid

log = logging.getLogger("perfgate.gateway")

TIMERS_PER_ROUND = 500
"""Timers fired between checkpoints, so a burst of due timers never stalls the server."""


class Timed(Protocol):
    def on_timer(self, now: float) -> None:
        """The timer set for this target is due. Must not block or raise."""


class Pulse:
    """Fires :meth:`Timed.on_timer` at the times asked with :meth:`call_at`.

    Start ``run`` in the nursery of the component that owns it (the gateway); it runs until
    cancelled and holds no resources. A timer fires at ``when`` rounded up to a multiple of
    ``grid_s`` (0: exactly at ``when``): never early, at most one step late.
    """

    def __init__(self, grid_s: float = GRID_S) -> None:
        self.grid_s = grid_s
        self.timers: TimerQueue[Timed] = TimerQueue()
        self._nap: trio.CancelScope | None = None
        self.random = random.random

    def call_at(self, when: float, target: Timed) -> Timer:
        """Fire ``target.on_timer`` at ``when`` (on the grid); cancel with :meth:`cancel`.
        The timer's ``[0]`` is the time it will fire."""
        when = on_grid(when, self.grid_s)
        timer = self.timers.add(when, target)
        nap = self._nap
        if nap is not None and when < nap.deadline:
            nap.deadline = when
        return timer

    @staticmethod
    def cancel(timer: Timer) -> None:
        TimerQueue.cancel(timer)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            now = trio.current_time()
            due = self.timers.pop_due(now, TIMERS_PER_ROUND)
            for _timer, target in due:
                try:
                    target.on_timer(now)
                except Exception:
                    log.exception("gateway: a timer callback failed")
            if len(due) == TIMERS_PER_ROUND:
                await trio.lowlevel.checkpoint()
                continue
            next_at = self.timers.next_at()
            with trio.CancelScope(deadline=math.inf if next_at is None else next_at) as nap:
                self._nap = nap
                await trio.sleep_forever()
            self._nap = None
