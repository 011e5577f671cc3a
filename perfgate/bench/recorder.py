"""What one client process measures: corrected and uncorrected latency, send lag, outcomes.

Pure bookkeeping (no trio, no clock): the caller passes the times. Latencies are recorded
twice: *corrected* from the intended send time (what a user of an open system sees), and
*uncorrected* from the actual send time (the service time alone, what a closed-loop tool
would report). The gap between the two is the generator's own lag plus queueing.
"""

from __future__ import annotations

import statistics
from typing import Any

import attrs
from hdrh.histogram import HdrHistogram

from perfgate.bench import histogram as hdr

#: Keep this many distinct error messages per process, for the report.
MAX_ERROR_SAMPLES = 5


@attrs.define
class Recorder:
    """Accumulates one process's measurements of one kind (requests, or deliveries)."""

    corrected: HdrHistogram = attrs.field(factory=hdr.new_histogram)
    uncorrected: HdrHistogram = attrs.field(factory=hdr.new_histogram)
    send_lag: HdrHistogram = attrs.field(factory=hdr.new_histogram)
    scheduled: int = 0
    sent: int = 0
    #: the schedule this process drives (set by the driver): for the lag trend
    schedule_start_s: float = 0.0
    schedule_end_s: float = 0.0
    first_quarter_lags: list[float] = attrs.field(factory=list)
    last_quarter_lags: list[float] = attrs.field(factory=list)
    completed: int = 0
    errors: int = 0
    timeouts: int = 0
    first_intended_s: float | None = None
    last_sent_s: float | None = None
    error_samples: list[str] = attrs.field(factory=list)

    def on_send(self, intended_s: float, sent_s: float) -> None:
        """A request left (late by ``sent_s - intended_s``)."""
        self.sent += 1
        quarter_s = (self.schedule_end_s - self.schedule_start_s) / 4.0
        if intended_s < self.schedule_start_s + quarter_s:
            self.first_quarter_lags.append(sent_s - intended_s)
        elif intended_s >= self.schedule_end_s - quarter_s:
            self.last_quarter_lags.append(sent_s - intended_s)
        hdr.record_ms(self.send_lag, (sent_s - intended_s) * 1000.0)
        if self.first_intended_s is None or intended_s < self.first_intended_s:
            self.first_intended_s = intended_s
        if self.last_sent_s is None or sent_s > self.last_sent_s:
            self.last_sent_s = sent_s

    def on_done(self, intended_s: float, sent_s: float, done_s: float) -> None:
        """A request succeeded at ``done_s``."""
        self.completed += 1
        hdr.record_ms(self.corrected, (done_s - intended_s) * 1000.0)
        hdr.record_ms(self.uncorrected, (done_s - sent_s) * 1000.0)

    def on_error(self, intended_s: float, sent_s: float, done_s: float, error: str) -> None:
        """A request failed; its latency still counts (an error is not a free fast answer)."""
        self.errors += 1
        self.on_done(intended_s, sent_s, done_s)
        self.completed -= 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES and error not in self.error_samples:
            self.error_samples.append(error)

    def on_timeout(self, intended_s: float, sent_s: float, timeout_s: float) -> None:
        """A request timed out: an error, with latency at least the timeout."""
        self.timeouts += 1
        self.on_error(intended_s, sent_s, sent_s + timeout_s, f"timeout after {timeout_s:g}s")

    def to_json(self) -> dict[str, Any]:
        return {
            "histogram": hdr.encode(self.corrected),
            "uncorrected_histogram": hdr.encode(self.uncorrected),
            "send_lag_histogram": hdr.encode(self.send_lag),
            "scheduled": self.scheduled,
            "sent": self.sent,
            "first_quarter_lag_s": _median(self.first_quarter_lags),
            "last_quarter_lag_s": _median(self.last_quarter_lags),
            "completed": self.completed,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "first_intended_s": self.first_intended_s,
            "last_sent_s": self.last_sent_s,
            "error_samples": self.error_samples,
        }


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
