"""Make the last write of a response finish even if the app is cancelled right after it.

Found by schemathesis: a keep-alive connection hung for good when a route answered *before*
the request body had arrived (a 405, 401 or 415 that never reads the body) and the body came
a few milliseconds later. Hypercorn closes such a connection (it cannot be reused) from inside
the app's final ``send``; quart-trio, having sent the response, cancels the request's nursery
as soon as hypercorn posts ``http.disconnect``, which lands on that close mid-way
(``send_eof`` is cancelled before it shuts the socket). The socket stays open, h11 pauses on
the next request, and the client waits for a response that never comes.

Shielding the final ``http.response.body`` send lets hypercorn finish what it started. It adds
no new way to block: hypercorn already shields the socket write inside it, and the close after
it is a shutdown and a close, both immediate.
"""

from __future__ import annotations

from typing import Any

import trio


class ShieldFinalSendMiddleware:
    """Pass everything through; run the last body message of each HTTP response shielded."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_final_shielded(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await self.app(scope, receive, send_final_shielded)
