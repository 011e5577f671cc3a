"""The shared WebSocket a client submits jobs over, and follows them on.

One connection per client. ``submit`` frames are pipelined (each carries an ``id``; their acks
come back matched by it), and the server pushes each submitted job's events on the same
connection. A :class:`Watch` per job keeps only what ``result()`` needs (the final state
event, the result), never the job's logs, so memory stays bounded by the jobs in flight.

When the connection is lost, every pending submit fails with :class:`ConnectionLost` and every
watch is *detached*: its waiters fall back to HTTP long-polls.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.abc

from perfgate.client import _protocol as p
from perfgate.client._errors import PerfgateClientError, PerfgateTimeout
from perfgate.client._ws import ConnectionLost, NotSent, WebSocket

log = logging.getLogger("perfgate.client")


class Watch:
    """What the link saw of one job: ``final`` (the final state event) and ``result``.
    ``settled`` is set once ``final`` is known, or the watch is detached (``final`` None)."""

    __slots__ = ("final", "has_result", "last_offset", "result", "settled")

    def __init__(self) -> None:
        self.final: dict[str, Any] | None = None
        self.result: Any = None
        self.has_result = False
        self.last_offset = 0
        self.settled = anyio.Event()


class _Slot:
    __slots__ = ("done", "error", "reply", "watch")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.watch: Watch | None = None
        self.reply: p.Reply | None = None
        self.error: BaseException | None = None


class SubmitUnsupported(PerfgateClientError):
    """The server's gateway does not take ``submit`` frames (an older server)."""


class JobLink:
    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self._next_id = 0
        self._pending: dict[int, _Slot] = {}
        self._watches: dict[str, Watch] = {}
        self.lost: ConnectionLost | None = None

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Read frames until the connection ends; never raises (a failure detaches all)."""
        task_status.started()
        error = ConnectionLost("WebSocket closed by the client")
        try:
            while True:
                text = await self._ws.receive_text()
                for frame in p.parse_frame(text):
                    self._dispatch(frame)
        except ConnectionLost as exc:
            error = exc
        except PerfgateClientError as exc:  # a frame we cannot read: give up on this link
            log.warning("perfgate client: dropping the WebSocket: %s", exc)
            error = ConnectionLost(str(exc))
        finally:
            self.lost = error
            self._detach_all()
            with anyio.CancelScope(shield=True):
                await self._ws.aclose()

    def _detach_all(self) -> None:
        for slot in self._pending.values():
            slot.error = self.lost
            slot.done.set()
        self._pending.clear()
        for watch in self._watches.values():
            watch.settled.set()
        self._watches.clear()

    def _dispatch(self, frame: p.ServerFrame) -> None:
        if isinstance(frame, p.Reply):
            slot = self._pending.pop(frame.id, None) if isinstance(frame.id, int) else None
            if slot is None:
                return
            if frame.ok:
                job = frame.fields.get("job")
                if isinstance(job, dict) and isinstance(job.get("id"), str):
                    # Registered before the next frame is read: the job's events follow its ack.
                    slot.watch = self._watches.setdefault(job["id"], Watch())
            slot.reply = frame
            slot.done.set()
            return
        if not frame.channel.startswith("jobs:"):
            return
        watch = self._watches.get(frame.channel[5:])
        if watch is None:
            return
        if watch.last_offset and frame.offset != watch.last_offset + 1:
            # A gap: the server dropped events for a slow reader. HTTP knows the truth.
            del self._watches[frame.channel[5:]]
            watch.settled.set()
            return
        watch.last_offset = frame.offset
        data = frame.data
        if isinstance(data, dict) and data.get("event") == "result":
            watch.result, watch.has_result = data.get("result"), True
        elif p.is_final_event(data):
            watch.final = data
            del self._watches[frame.channel[5:]]
            watch.settled.set()

    def watch(self, job_id: str) -> Watch | None:
        return self._watches.get(job_id)

    async def submit(
        self, body: dict[str, Any], *, timeout_s: float
    ) -> tuple[dict[str, Any], Watch | None]:
        """Submit over the link: the job's JSON (committed) and its watch. Raises the typed
        problem error of an ``error`` frame, :class:`SubmitUnsupported`, :class:`ConnectionLost`
        (the submit may or may not have been committed) or :class:`PerfgateTimeout`."""
        if self.lost is not None:
            raise NotSent(str(self.lost))
        self._next_id += 1
        request_id = self._next_id
        slot = _Slot()
        self._pending[request_id] = slot
        try:
            with anyio.move_on_after(timeout_s):
                await self._ws.send_text(p.submit_frame(request_id, body))
                await slot.done.wait()
        finally:
            self._pending.pop(request_id, None)
        if slot.error is not None:
            raise slot.error
        if slot.reply is None:
            raise PerfgateTimeout(f"submit: no ack within {timeout_s:g} s")
        fields = slot.reply.fields
        if not slot.reply.ok:
            if fields.get("code") == "unknown_op":
                raise SubmitUnsupported(str(fields.get("message", "")))
            raise p.frame_error(fields)
        job = p.job_of(fields.get("job"))
        return job, slot.watch

    async def aclose(self) -> None:
        await self._ws.aclose()
