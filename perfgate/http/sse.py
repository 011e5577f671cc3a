"""Server-Sent Events as bytes, and the policy of one job's event stream. Pure: no trio, no I/O.

The wire format is the WHATWG ``text/event-stream``: fields ``id:``, ``event:``, ``data:``, a
blank line after each event, and ``:`` comment lines (heartbeats) that clients ignore. An
event's ``id`` is ``EPOCH:OFFSET`` of the job channel (see :mod:`perfgate.broker`), so a
client resuming with ``Last-Event-ID`` from another history (a restarted hub, an expired
channel) is detected rather than replayed from the wrong place.
"""

from __future__ import annotations

import re

from perfgate.errors import ValidationError

#: The request header a reconnecting client sends (browsers' EventSource do it themselves).
LAST_EVENT_ID = "Last-Event-ID"
_EPOCH = re.compile(r"[!-~]{1,128}")  # printable ASCII, no space: what an id line can hold
_OFFSET = re.compile(r"[0-9]{1,18}")

#: Job channel events a stream may drop when its reader is slow: the next one supersedes them.
DROPPABLE_EVENTS = frozenset({"progress"})


def event_id(epoch: str, offset: int) -> str:
    return f"{epoch}:{offset}"


def parse_last_event_id(raw: str | None) -> tuple[str, int] | None:
    """``(epoch, offset)`` from a ``Last-Event-ID`` header; ``None`` when absent or empty.

    Raises :class:`ValidationError` (422, naming the header) when it is not ``EPOCH:OFFSET``.
    """
    if raw is None or raw == "":
        return None
    epoch, sep, offset = raw.rpartition(":")
    if not sep or not _EPOCH.fullmatch(epoch) or not _OFFSET.fullmatch(offset):
        raise ValidationError(
            f"{LAST_EVENT_ID} must be EPOCH:OFFSET, as sent in an event's id",
            errors=[{"field": LAST_EVENT_ID, "message": "not EPOCH:OFFSET"}],
        )
    return epoch, int(offset)


def format_event(event: str, data_json: str, *, id_: str | None = None) -> bytes:
    """One event. ``data_json`` is one line of JSON (compact JSON has no raw newline; any
    line break in it is split over several ``data:`` lines, which clients join back)."""
    lines = [f"id: {id_}"] if id_ is not None else []
    lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data_json.splitlines() or [""])
    return ("\n".join(lines) + "\n\n").encode()


def format_comment(text: str) -> bytes:
    """A comment line (``: text``): keeps proxies from timing the stream out; clients skip it."""
    return f": {text}\n\n".encode()


def format_retry(retry_ms: int) -> bytes:
    """Tell the client how long to wait before it reconnects."""
    return f"retry: {retry_ms}\n\n".encode()


class StreamBudget:
    """The bounded buffer between the hub (which publishes synchronously) and one stream.

    ``admit`` decides for each message: queue it, drop it (a droppable event over budget:
    counted), or overflow (an event that must not be lost does not fit: the stream ends and
    the client resumes from its last id). ``release`` returns a delivered message's bytes.
    """

    __slots__ = ("budget_bytes", "dropped", "overflowed", "queued_bytes")

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.queued_bytes = 0
        self.dropped = 0
        self.overflowed = False

    def admit(self, size_bytes: int, event: str | None) -> bool:
        """True: queue it. False: dropped or overflowed (see :attr:`overflowed`)."""
        if self.overflowed:
            return False
        # One message is always admitted into an empty buffer, however large.
        if self.queued_bytes and self.queued_bytes + size_bytes > self.budget_bytes:
            if event in DROPPABLE_EVENTS:
                self.dropped += 1
            else:
                self.overflowed = True
            return False
        self.queued_bytes += size_bytes
        return True

    def refuse(self, size_bytes: int, event: str | None) -> None:
        """An admitted message did not fit the queue's message-count bound after all: take
        its bytes back and apply the same policy as for bytes."""
        self.queued_bytes = max(0, self.queued_bytes - size_bytes)
        if event in DROPPABLE_EVENTS:
            self.dropped += 1
        else:
            self.overflowed = True

    def release(self, size_bytes: int) -> None:
        self.queued_bytes = max(0, self.queued_bytes - size_bytes)
