"""A job's events, gapless across reconnects: one WebSocket per reader, resubscribed with
``since``/``epoch`` after every loss, each offset delivered once (:class:`EventCursor`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import attrs

from perfgate.client import _protocol as p
from perfgate.client._errors import EventsLost, PerfgateConnectionError, PerfgateTimeout
from perfgate.client._ws import ConnectionLost, WebSocket

#: With no event for this long, the job is read over HTTP: one that finished while its
#: history expired would otherwise be waited for forever.
QUIET_CHECK_S = 30.0


@attrs.frozen
class JobEvent:
    """One event of a job: its offset on the job's channel (1, 2, 3... with no gap) and the
    event as the server sent it (``{"event": "state" | "progress" | "log" | "result" |
    "error", ...}``)."""

    offset: int
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.data.get("event", ""))


async def follow(
    connect: Callable[[], Awaitable[WebSocket]],
    job_id: str,
    *,
    reconnect_s: float,
    read_job: Callable[[], Awaitable[dict[str, Any]]],
    quiet_check_s: float = QUIET_CHECK_S,
) -> AsyncIterator[JobEvent]:
    """Yield the job's events from the first, ending after its final state event.

    A lost connection is reopened (with back-off) for up to ``reconnect_s`` before
    :class:`PerfgateConnectionError` is raised; a history that no longer reaches back is
    :class:`EventsLost`. Closing the iterator closes its connection."""
    cursor = p.EventCursor()
    channel = f"jobs:{job_id}"
    while True:
        ws = await _reconnect(connect, reconnect_s)
        try:
            await ws.send_text(p.subscribe_frame(1, channel, *cursor.resubscribe()))
            while True:
                with anyio.move_on_after(quiet_check_s) as quiet:
                    text = await ws.receive_text()
                if quiet.cancelled_caught:
                    job = await read_job()
                    if job.get("state") in p.FINAL_STATES:
                        raise EventsLost(f"job {job_id} finished, its events are no longer held")
                    continue
                for frame in p.parse_frame(text):
                    if isinstance(frame, p.Reply):
                        if frame.id == 1 and not frame.ok:
                            raise p.frame_error(frame.fields)
                        if frame.id == 1:
                            cursor.acknowledged(frame.fields)
                        continue
                    if frame.channel != channel or not cursor.admit(frame.offset):
                        continue
                    data = (
                        frame.data
                        if isinstance(frame.data, dict)
                        else {"event": "", "value": frame.data}
                    )
                    yield JobEvent(frame.offset, data)
                    if p.is_final_event(data):
                        return
        except ConnectionLost:
            continue
        finally:
            await ws.aclose()


async def _reconnect(connect: Callable[[], Awaitable[WebSocket]], budget_s: float) -> WebSocket:
    delay_s = 0.05
    deadline = anyio.current_time() + budget_s
    while True:
        try:
            return await connect()
        except (PerfgateConnectionError, PerfgateTimeout):
            if anyio.current_time() + delay_s > deadline:
                raise
        await anyio.sleep(delay_s)
        delay_s = min(delay_s * 2, 1.0)
