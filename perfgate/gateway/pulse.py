"""The heartbeat loop: the thin trio shell around :class:`~perfgate.gateway.heartbeat.HeartbeatPolicy`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from perfgate.gateway.heartbeat import HeartbeatPolicy


async def run_heartbeat(
    policy: HeartbeatPolicy,
    ping: Callable[[], Awaitable[None]],
    *,
    on_rtt: Callable[[float], None] = lambda _rtt_s: None,
    on_tick: Callable[[float], None] = lambda _now: None,
    on_sleep: Callable[[trio.CancelScope | None], None] = lambda _scope: None,
) -> None:
    """Drive ``policy`` until a probe goes unanswered for ``pong_timeout_s``, then return.

    ``ping`` sends a ping and returns when its pong arrives. ``on_tick`` runs whenever the
    loop wakes. ``on_sleep`` is given the scope of each sleep between ticks (and None when
    it ends): moving its deadline earlier wakes the loop for an extra ``on_tick`` without
    a probe (the connection uses it to check a slow consumer on time). Runs until
    cancelled otherwise; it holds no resources, so cancellation needs no cleanup.
    """
    next_at = trio.current_time() + policy.delay()
    while True:
        with trio.CancelScope(deadline=next_at) as nap:
            on_sleep(nap)
            await trio.sleep_forever()
        on_sleep(None)
        now = trio.current_time()
        on_tick(now)
        if now < next_at:
            continue
        if policy.should_probe(now):
            with trio.move_on_at(policy.pong_deadline(now)) as wait:
                await ping()
            if wait.cancelled_caught:
                return
            done = trio.current_time()
            policy.on_pong(done - now, done)
            on_rtt(done - now)
        next_at = trio.current_time() + policy.delay()
