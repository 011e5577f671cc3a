"""``GET /v1/jobs/{id}/events``: a job's channel as Server-Sent Events, over plain HTTP.

For clients and proxies that will not carry a WebSocket (curl, a browser's ``EventSource``).
Each event is one message of the job's channel ``jobs:{id}`` (``state``, ``progress``, ``log``,
``result``, ``error``) with ``id: EPOCH:OFFSET``; a client that reconnects with that id in
``Last-Event-ID`` is replayed what it missed from the channel's retained history, then follows
live. When history cannot cover the gap (expired, or another epoch), the stream sends one
``snapshot`` event, the job as ``GET /v1/jobs/{id}`` gives it, and carries on from there. A
fresh stream replays the retained history from the start (or sends a snapshot when there is
none). The stream ends after the job's final ``state`` event; a resume after it is answered
204, which tells ``EventSource`` to stop reconnecting.

No task is started: the hub delivers into a bounded memory channel (synchronously, from the
publisher's task) and the response body reads it. When the client goes away, Quart cancels the
request and closes the body; its ``finally`` unsubscribes. During a drain every stream ends
after what it has queued, and new streams get 503.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import trio
from quart import Blueprint, Response, current_app, request

from perfgate.broker import Hub, Message, Replay
from perfgate.config import HttpConfig
from perfgate.errors import PerfgateError, Unavailable
from perfgate.http.openapi import document
from perfgate.http.security import principal, requires
from perfgate.http.services import Services
from perfgate.http.sse import (
    LAST_EVENT_ID,
    StreamBudget,
    event_id,
    format_comment,
    format_event,
    format_retry,
    parse_last_event_id,
)
from perfgate.jobs import JobService
from perfgate.logs import log_event
from perfgate.store import FINISHED_STATES, JobRecord

log = logging.getLogger("perfgate.http")

#: Events queued per stream at most (the byte budget usually binds first).
QUEUE_MESSAGES = 256
#: How long a client waits before it reconnects after the stream ends without a final event.
RETRY_MS = 2000
#: Unsubscribing after a stream never waits longer than this (it is shielded from cancellation).
CLEANUP_S = 2.0

_Item = tuple[int, str, str]  # (offset, event name, data JSON)


class EventStreams:
    """Every open event stream of this app: opened per request, ended together at a drain."""

    def __init__(self, config: HttpConfig) -> None:
        self.config = config
        self.draining = False
        self._open: set[trio.MemorySendChannel[_Item]] = set()
        self.opened = 0
        self.dropped = 0
        self.overflowed = 0

    def open(self) -> tuple[trio.MemorySendChannel[_Item], trio.MemoryReceiveChannel[_Item]]:
        if self.draining:
            raise Unavailable("draining: not opening new event streams")
        send, receive = trio.open_memory_channel[_Item](QUEUE_MESSAGES)
        self._open.add(send)
        self.opened += 1
        return send, receive

    def close(self, send: trio.MemorySendChannel[_Item], budget: StreamBudget) -> None:
        send.close()
        self._open.discard(send)
        self.dropped += budget.dropped
        self.overflowed += budget.overflowed

    async def drain(self, timeout_s: float) -> None:
        """End every stream after what it has queued; refuse new ones. Returns at once."""
        self.draining = True
        for send in list(self._open):
            send.close()

    def stats(self) -> dict[str, Any]:
        return {
            "open": len(self._open),
            "opened": self.opened,
            "progress_dropped": self.dropped,
            "slow_readers_closed": self.overflowed,
        }


class _Sink:
    """What the hub delivers to for one stream: decode, apply the budget, queue."""

    __slots__ = ("budget", "send")

    def __init__(self, send: trio.MemorySendChannel[_Item], budget: StreamBudget) -> None:
        self.send = send
        self.budget = budget

    def deliver(self, message: Message) -> None:
        data = message.data
        name = data.get("event") if isinstance(data, dict) else None
        data_json = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        size = len(data_json)
        if not self.budget.admit(size, name):
            if self.budget.overflowed:
                self.send.close()  # the reader sends what is queued, then ends
            return
        try:
            self.send.send_nowait((message.offset, str(name), data_json))
        except trio.WouldBlock:
            self.budget.refuse(size, name)
            if self.budget.overflowed:
                self.send.close()
        except trio.ClosedResourceError:
            self.budget.release(size)  # ended already (drain, overflow)


class _Null:
    def deliver(self, message: Message) -> None:
        pass


def _is_final(name: str, data_json: str) -> bool:
    return name == "state" and json.loads(data_json).get("state") in FINISHED_STATES


def _snapshot(record: JobRecord, epoch: str, offset: int) -> bytes:
    return format_event(
        "snapshot",
        json.dumps(record.to_json(), separators=(",", ":"), ensure_ascii=False),
        id_=event_id(epoch, offset),
    )


async def _unsubscribe(hub: Hub, channel: str, sink: Any) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(CLEANUP_S):
        await hub.unsubscribe(channel, sink)


async def stream_job_events(
    *,
    hub: Hub,
    service: JobService,
    streams: EventStreams,
    job_id: str,
    resume: tuple[str, int] | None,
) -> AsyncIterator[bytes]:
    """The body of one stream (see the module docstring). Everything it opens, it closes in
    its ``finally``, which also runs when the client disconnects (the body is closed)."""
    channel = f"jobs:{job_id}"
    send, receive = streams.open()
    budget = StreamBudget(streams.config.events_queue_bytes)
    sink = _Sink(send, budget)
    subscribed = False
    try:
        yield format_retry(RETRY_MS)
        since, epoch = (0, None) if resume is None else (resume[1], resume[0])
        try:
            replay: Replay = await hub.subscribe(channel, sink, since=since, epoch=epoch)
            subscribed = True
            record = await service.get(job_id)  # after subscribing: what follows are events
        except PerfgateError as exc:
            # The status line is sent already (a broker outage, the job expired meanwhile):
            # say why in a comment and end; the client comes back after `retry`.
            yield format_comment(f"{exc.code}: {exc.message}")
            return
        if not replay.recovered or (resume is None and not replay.messages):
            yield _snapshot(record, replay.epoch, replay.offset)
            if record.finished:
                return
            last = replay.offset
        else:
            last = since
            for message in replay.messages:
                data_json = json.dumps(message.data, separators=(",", ":"), ensure_ascii=False)
                name = str(json.loads(data_json).get("event"))
                last = message.offset
                yield format_event(name, data_json, id_=event_id(replay.epoch, last))
                if _is_final(name, data_json):
                    return
        heartbeat_s = streams.config.events_heartbeat_s
        while True:
            item: _Item | None = None
            ended = False
            # No yield inside the cancel scope: the body is suspended at each yield.
            with trio.move_on_after(heartbeat_s):
                try:
                    item = await receive.receive()
                except trio.EndOfChannel:
                    ended = True
            if ended:
                if budget.overflowed:
                    log_event(log, logging.INFO, "event stream fell behind: ended", job=job_id)
                    yield format_comment("too far behind: reconnect with Last-Event-ID")
                else:
                    yield format_comment("server draining: reconnect with Last-Event-ID")
                return
            if item is None:
                yield format_comment("keepalive")
                continue
            offset, name, data_json = item
            budget.release(len(data_json))
            if offset <= last:
                continue  # delivered live and in the replay, or reflected in the snapshot
            last = offset
            yield format_event(name, data_json, id_=event_id(replay.epoch, offset))
            if _is_final(name, data_json):
                return
    finally:
        streams.close(send, budget)
        receive.close()
        if subscribed:
            await _unsubscribe(hub, channel, sink)


blueprint = Blueprint("events", __name__)

#: One event of the stream (OpenAPI describes ``text/event-stream`` responses event by event).
EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {
            "type": "string",
            "enum": ["state", "progress", "log", "result", "error", "snapshot"],
        },
        "id": {"type": "string"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"type": "object"},
        },
        "retry": {"type": "integer"},
    },
}

LAST_EVENT_ID_HEADER = {
    "name": LAST_EVENT_ID,
    "in": "header",
    "required": False,
    # Empty is allowed, and means absent (as EventSource treats an empty last event id).
    "schema": {"type": "string", "pattern": r"^([!-~]{1,128}:[0-9]{1,18})?$"},
    "description": "resume after this event (the id of the last event received)",
}


@blueprint.get("/v1/jobs/<job_id>/events")
@document(
    "A job's events as Server-Sent Events (state, progress, log, result, error)",
    responses={200: EVENT_SCHEMA, 204: None, 404: None, 422: None, 503: None},
    scope="subscribe",
    query=[LAST_EVENT_ID_HEADER],
    tags=["jobs"],
    content_type="text/event-stream",
)
@requires("subscribe")
async def job_events(job_id: str) -> Response:
    state = current_app.config["PERFGATE"]
    services: Services = state.services
    service, hub, streams = services.jobs, services.hub, services.event_streams
    if service is None or hub is None or streams is None:
        raise Unavailable("the job service is not running")
    record = await service.get(job_id, tenant=principal().tenant_filter)  # 404: not ours
    resume = parse_last_event_id(request.headers.get(LAST_EVENT_ID))
    if streams.draining:
        raise Unavailable("draining: not opening new event streams")
    if resume is not None and record.finished and await _seen_everything(hub, job_id, resume):
        response = Response(b"", status=204)
        response.headers["Cache-Control"] = "no-store"
        return response
    body = stream_job_events(
        hub=hub, service=service, streams=streams, job_id=job_id, resume=resume
    )
    response = Response(body, content_type="text/event-stream; charset=utf-8")
    response.timeout = None  # the stream ends with the job, a drain or the client
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


async def _seen_everything(hub: Hub, job_id: str, resume: tuple[str, int]) -> bool:
    """Whether a finished job's channel holds nothing after ``resume`` (same epoch)."""
    channel, sink = f"jobs:{job_id}", _Null()
    try:
        replay = await hub.subscribe(channel, sink, since=resume[1], epoch=resume[0])
    finally:
        await _unsubscribe(hub, channel, sink)
    return replay.recovered and not replay.messages
