"""Rolling latency windows: a ring of per-slice HDR histograms per series. Pure: time is passed in.

A :class:`RollingWindow` keeps ``2 * slices`` slices of ``window_s / slices`` seconds each: the
newest ``slices`` (the last one still filling) are the *current* window, the ``slices`` before
them are the *baseline* window that the regression detector compares against. A slice is only
allocated when something is recorded in it, so an idle series costs almost nothing.

Values are recorded in microseconds with two significant figures (1 % resolution) between
1 µs and one hour; a larger value is clamped to one hour, a negative one to zero. Figures come
out in milliseconds.

Memory: one slice holds a ~13 KiB histogram (32-bit counters), so a busy series costs about
``2 * slices * 13 KiB`` (~310 KiB with 12 slices); :class:`SeriesWindows` caps the number of
series (``max_series``) and folds the rest into ``"other"`` so that labels stay bounded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: a job can legitimately run that long
SIGNIFICANT_FIGURES = 2
_WORD_SIZE = 4
OTHER = "other"


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES, word_size=_WORD_SIZE)


def to_micros(value_s: float) -> int:
    """Seconds to whole microseconds, clamped into the histogram's range (NaN counts as 0)."""
    if not value_s > 0:  # also catches NaN
        return 0
    return min(HIGHEST_US, round(value_s * 1_000_000))


@attrs.frozen
class WindowStats:
    """What one window says about a series. Latencies in milliseconds; 0 when empty."""

    count: int = 0
    errors: int = 0
    duration_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0

    @property
    def throughput_per_s(self) -> float:
        return self.count / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_rate_pct(self) -> float:
        return 100.0 * self.errors / self.count if self.count else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "errors": self.errors,
            "throughput_per_s": round(self.throughput_per_s, 3),
            "error_rate_pct": round(self.error_rate_pct, 3),
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
        }


def stats_of(histogram: HdrHistogram | None, errors: int, duration_s: float) -> WindowStats:
    """Summarise a histogram (``None`` means nothing was recorded)."""
    if histogram is None or histogram.get_total_count() == 0:
        return WindowStats(count=0, errors=0, duration_s=duration_s)
    values = histogram.get_percentile_to_value_dict([50.0, 95.0, 99.0])
    return WindowStats(
        count=histogram.get_total_count(),
        errors=errors,
        duration_s=duration_s,
        p50_ms=values[50.0] / 1000,
        p95_ms=values[95.0] / 1000,
        p99_ms=values[99.0] / 1000,
        max_ms=histogram.get_max_value() / 1000,
    )


class _Slice:
    __slots__ = ("cached", "errors", "histogram", "index")

    def __init__(self, index: int) -> None:
        self.index = index
        self.histogram = new_histogram()
        self.errors = 0
        self.cached: WindowStats | None = None  # filled once the slice is closed


class RollingWindow:
    """One series (a route, a task): current and baseline windows of HDR histograms.

    ``start_s`` is when observation began: until a full window has passed, throughput is
    divided by the time actually observed, not by ``window_s``.
    """

    def __init__(self, window_s: float, *, start_s: float, slices: int = 12) -> None:
        if window_s <= 0 or slices < 1:
            raise ValueError("window_s must be > 0 and slices >= 1")
        self.window_s = window_s
        self.slices = slices
        self.slice_s = window_s / slices
        self.start_s = start_s
        self._ring: list[_Slice | None] = [None] * (2 * slices)
        self.last_record_s = -math.inf

    def _index(self, now_s: float) -> int:
        return math.floor(now_s / self.slice_s)

    def record(self, value_s: float, now_s: float, *, error: bool = False) -> None:
        index = self._index(now_s)
        position = index % len(self._ring)
        slot = self._ring[position]
        if slot is None or slot.index != index:
            slot = _Slice(index)
            self._ring[position] = slot
        slot.histogram.record_value(to_micros(value_s))
        slot.cached = None
        if error:
            slot.errors += 1
        self.last_record_s = max(self.last_record_s, now_s)

    def _slices_between(self, first: int, last: int) -> Iterator[_Slice]:
        for index in range(first, last + 1):
            slot = self._ring[index % len(self._ring)]
            if slot is not None and slot.index == index:
                yield slot

    def _span_s(self, first: int, end_s: float) -> float:
        begin_s = max(first * self.slice_s, self.start_s)
        return max(0.0, end_s - begin_s)

    def current(self, now_s: float) -> WindowStats:
        """The last ``window_s`` (the newest slice is partial)."""
        last = self._index(now_s)
        first = last - self.slices + 1
        return _merge(self._slices_between(first, last), self._span_s(first, now_s))

    def baseline(self, now_s: float) -> WindowStats:
        """The ``window_s`` before the current window."""
        last = self._index(now_s) - self.slices
        first = last - self.slices + 1
        return _merge(
            self._slices_between(first, last), self._span_s(first, (last + 1) * self.slice_s)
        )

    def baseline_slices(self, now_s: float) -> list[WindowStats]:
        """Each closed slice of the baseline window on its own (empty slices included).

        Their spread is the baseline's noise. A closed slice never changes, so its figures are
        computed once.
        """
        last = self._index(now_s) - self.slices
        first = last - self.slices + 1
        found = {slot.index: slot for slot in self._slices_between(first, last)}
        out: list[WindowStats] = []
        for index in range(first, last + 1):
            span = self._span_s(index, (index + 1) * self.slice_s)
            if span <= 0:
                continue  # before observation began: not evidence of anything
            slot = found.get(index)
            if slot is None:
                out.append(WindowStats(duration_s=span))
                continue
            if slot.cached is None:
                slot.cached = stats_of(slot.histogram, slot.errors, span)
            out.append(slot.cached)
        return out

    def idle_since(self, now_s: float) -> float:
        return now_s - self.last_record_s


def _merge(slots: Iterable[_Slice], duration_s: float) -> WindowStats:
    merged: HdrHistogram | None = None
    errors = 0
    for slot in slots:
        if merged is None:
            merged = new_histogram()
        merged.add(slot.histogram)
        errors += slot.errors
    return stats_of(merged, errors, duration_s)


class SeriesWindows:
    """Rolling windows keyed by a bounded label (route, task), plus their merged total."""

    def __init__(
        self, window_s: float, *, start_s: float, slices: int = 12, max_series: int = 64
    ) -> None:
        self.window_s = window_s
        self.slices = slices
        self.max_series = max_series
        self.start_s = start_s
        self.series: dict[str, RollingWindow] = {}
        self.total = RollingWindow(window_s, start_s=start_s, slices=slices)

    def record(self, key: str, value_s: float, now_s: float, *, error: bool = False) -> None:
        """Record one observation. Past ``max_series`` keys, new keys are counted as "other"."""
        window = self.series.get(key)
        if window is None:
            if len(self.series) >= self.max_series - 1 and key != OTHER:
                key = OTHER
            window = self.series.get(key)
            if window is None:
                window = RollingWindow(self.window_s, start_s=self.start_s, slices=self.slices)
                self.series[key] = window
        window.record(value_s, now_s, error=error)
        self.total.record(value_s, now_s, error=error)

    def prune(self, now_s: float) -> None:
        """Forget series idle for two whole windows (nothing of them is left in the ring)."""
        for key in [k for k, w in self.series.items() if w.idle_since(now_s) > 2 * self.window_s]:
            del self.series[key]

    def current(self, now_s: float) -> dict[str, WindowStats]:
        """Current-window figures per series, for series with data in the window."""
        out = {}
        for key, window in sorted(self.series.items()):
            stats = window.current(now_s)
            if stats.count:
                out[key] = stats
        return out
