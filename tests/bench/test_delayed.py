"""The test-only request delay (perfgate/bench/_delayed.py) holds a request, not the server."""

from __future__ import annotations

from typing import Any

import trio

from perfgate.bench._delayed import DelayRequests


async def test_a_delayed_request_does_not_hold_the_event_loop() -> None:
    other_ran = trio.Event()
    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(other_ran.is_set())

    async def other() -> None:
        await trio.sleep(0.01)
        other_ran.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(DelayRequests(app, 0.2), {"type": "http"}, None, None)
        nursery.start_soon(other)
    # a busy-wait would have held the loop for the whole delay: the other task could not run
    # before the app was called, and every concurrent request would queue behind it
    assert seen == [True]


async def test_only_http_requests_are_delayed() -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    with trio.fail_after(5):
        await DelayRequests(app, 3600.0)({"type": "lifespan"}, None, None)
    assert calls == ["lifespan"]
