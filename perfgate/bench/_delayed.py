"""TEST ONLY: ``perfgate serve`` with a fixed CPU cost added to every HTTP request.

``python -m perfgate.bench._delayed DELAY_MS serve ARGS...`` runs ``perfgate serve ARGS`` with
an ASGI layer in front of the app that busy-waits ``DELAY_MS`` milliseconds per HTTP request:
a code regression on the request path, as real as one can be made without editing the code.

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


class BurnCpu:
    """ASGI middleware: ``delay_s`` of busy CPU before each HTTP request reaches the app."""

    def __init__(self, app: Any, delay_s: float) -> None:
        self.app = app
        self.delay_s = delay_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            until = time.perf_counter() + self.delay_s
            while time.perf_counter() < until:
                pass
        await self.app(scope, receive, send)


def main(argv: list[str]) -> int:
    from perfgate import cli
    from perfgate.http import server

    delay_s = float(argv[0]) / 1000.0
    original = server.wrap_app

    def wrap_app(app: Any, config: Any, **options: Any) -> Any:
        return BurnCpu(original(app, config, **options), delay_s)

    server.wrap_app = wrap_app  # perfgate's own module, in this test-only process
    return cli.main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
