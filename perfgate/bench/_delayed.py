"""TEST ONLY: ``perfgate serve`` with a fixed delay added to every HTTP request.

``python -m perfgate.bench._delayed DELAY_MS serve ARGS...`` runs ``perfgate serve ARGS`` with
an ASGI layer in front of the app that holds each HTTP request ``DELAY_MS`` milliseconds
before the app sees it: a slowdown on the request path, as real as one can be made without
editing the code.

How the delay is spent decides what the test measures. A busy-wait (CPU burnt on the event
loop) is not a fixed slowdown: every request arriving while the loop burns waits for it too,
and the CPU it takes is taken from the server's own work, so its cost grows with the load and
with how busy the machine is. A ``trio.sleep`` costs no CPU, but trio's epoll wait rounds its
timeout up to the next whole millisecond, so a 1.1 ms sleep lasts up to 2 ms. ``time.sleep``
in a worker thread (``trio.to_thread``) sleeps to the microsecond, costs no CPU and does not
hold the loop: each request is later by the delay (plus a thread hand-off of tens of
microseconds), concurrent requests are not. A client connection still waits for its previous
answer, so near a connection's capacity any slowdown, this one included, also queues: keep
the offered rate per connection well below it (the bench's tests do).

It exists so the bench's own tests can check that a slowdown is caught. The bench starts it
in place of ``perfgate serve`` only when ``perfgate bench`` gets the undocumented flag
``--test-only-delay-ms MS``, and then marks the result (``test_injection``) and says so in its
output and in every gate report that reads it. Nothing in ``perfgate serve`` (no flag, no
configuration key, no environment variable) reaches this module: a production server cannot
be slowed by it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import trio


class DelayRequests:
    """ASGI middleware: each HTTP request reaches the app ``delay_s`` later (see module doc)."""

    def __init__(self, app: Any, delay_s: float) -> None:
        self.app = app
        self.delay_s = delay_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await trio.to_thread.run_sync(time.sleep, self.delay_s)
        await self.app(scope, receive, send)


def main(argv: list[str]) -> int:
    from perfgate import cli
    from perfgate.http import server

    delay_s = float(argv[0]) / 1000.0
    original = server.wrap_app

    def wrap_app(app: Any, config: Any, **options: Any) -> Any:
        return DelayRequests(original(app, config, **options), delay_s)

    server.wrap_app = wrap_app  # perfgate's own module, in this test-only process
    return cli.main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
