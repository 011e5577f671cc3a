"""Make the last write of a response finish even if the app is cancelled right after it.

Found by schemathesis: a keep-alive connection hung for good when a route answered *before*
the request body had arrived (a 405, 401 or 415 that never reads the body) and the body came
a few milliseconds later. Hypercorn closes such a connection (it cannot be reused) from inside
the app's final ``send``; quart-trio, having sent the response, cancels the request's nursery
as soon as hypercorn posts ``http.disconnect``, which lands on that close mid-way
(``send_eof`` is cancelled before it shuts the socket). The socket stays open, h11 pauses on
the next request, and the client waits for a response that never comes.

The same cancellation cuts short what Hypercorn does after a response it keeps the connection
for: restart the keep-alive timer. Unshielded (as in a bare Quart-trio app), a connection's
head deadline applies to its first request only; a slowloris client then trickles its second
head for as long as it likes (``tests/http/test_limits.py``). That restart (a task spawned,
then cancelled by the next request) is most of what the shield costs per request, about
250 µs of CPU on the 2-core development machine: the price of the deadline, not overhead.

Shielding the final ``http.response.body`` send lets hypercorn finish what it started (the
server's ASGI wrapper, :class:`perfgate.http.server.EdgeASGI`, does it with these functions). It adds
no new way to block: hypercorn already shields the socket write inside it, and the close after
it is a shutdown and a close, both immediate.
"""

from __future__ import annotations

from typing import Any

import trio


def is_final_body(message: dict[str, Any]) -> bool:
    """The last message of an HTTP response: the one to send shielded."""
    return message["type"] == "http.response.body" and not message.get("more_body", False)


async def send_shielded(send: Any, message: dict[str, Any]) -> None:
    """``await send(message)``, shielded from the app's cancellation (see above)."""
    with trio.CancelScope(shield=True):
        await send(message)
