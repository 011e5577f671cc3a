"""Gateway counters, shared by all connections of one :class:`~perfgate.gateway.Gateway`."""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs

from perfgate.gateway.heartbeat import RttHistogram


@attrs.frozen
class CloseInfo:
    """Passed to ``on_close`` when a connection ends. ``code`` is what the close carried
    (1006 when the peer vanished without a close frame). ``client`` is the client's
    address (behind a trusted proxy, the one it forwarded)."""

    session: str
    code: int
    reason: str | None
    duration_s: float
    token_id: str
    client: str | None = None


class GatewayStats:
    def __init__(self) -> None:
        self.connections = 0
        self.accepted = 0
        self.rejected: Counter[int] = Counter()
        self.closes: Counter[int] = Counter()
        self.frames_sent = 0
        self.messages_sent = 0
        self.messages_dropped = 0
        self.batches_sent = 0
        self.messages_batched = 0
        self.requests = 0
        self.internal_errors = 0
        self.heartbeat_probes = 0
        self.heartbeat_timeouts = 0
        self.queue_peak_bytes = 0
        self.rtt = RttHistogram()

    def snapshot(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "accepted": self.accepted,
            "rejected": {str(k): v for k, v in sorted(self.rejected.items())},
            "closes": {str(k): v for k, v in sorted(self.closes.items())},
            "requests": self.requests,
            "frames_sent": self.frames_sent,
            "messages_sent": self.messages_sent,
            "messages_dropped": self.messages_dropped,
            "batches_sent": self.batches_sent,
            "messages_batched": self.messages_batched,
            "queue_peak_bytes": self.queue_peak_bytes,
            "internal_errors": self.internal_errors,
            "heartbeat": {
                "probes": self.heartbeat_probes,
                "timeouts": self.heartbeat_timeouts,
                "rtt_ms": self.rtt.summary_ms(),
            },
        }
