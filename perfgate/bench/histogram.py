"""HDR latency histograms: record in microseconds, ship between processes, merge, summarise.

A thin wrapper over the ``hdrhistogram`` package (``hdrh``) that fixes the value range and
precision, so histograms from different client processes always merge bucket by bucket, and
that speaks milliseconds at its edges. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

#: Tracked range: 1 µs to 10 minutes; anything longer is clamped to the top (a timeout).
LOWEST_US = 1
HIGHEST_US = 600_000_000
SIGNIFICANT_FIGURES = 3

#: The percentiles every summary carries (docs/architecture.md §7), name -> percentile.
SUMMARY_PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def new_histogram() -> HdrHistogram:
    """An empty histogram with the bench's fixed range and precision."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


def record_ms(histogram: HdrHistogram, latency_ms: float) -> None:
    """Record one latency; negative values count as 0, values past the range as the top."""
    value_us = min(HIGHEST_US, max(0, round(latency_ms * 1000.0)))
    histogram.record_value(value_us)


def encode(histogram: HdrHistogram) -> str:
    """The histogram as a compressed base64 string (HdrHistogram V2 format)."""
    data = histogram.encode()
    return data.decode("ascii") if isinstance(data, bytes) else str(data)


def decode(encoded: str) -> HdrHistogram:
    """Inverse of :func:`encode`. Raises ``ValueError`` on a string that is not a histogram."""
    try:
        decoded = HdrHistogram.decode(encoded)
    except Exception as exc:  # hdrh raises a zoo of types (zlib.error, TypeError, its own)
        raise ValueError(f"not an encoded HDR histogram: {exc}") from exc
    histogram = new_histogram()
    histogram.add(decoded)
    return histogram


def merge(encoded: Iterable[str]) -> HdrHistogram:
    """One histogram holding every value of the encoded histograms."""
    merged = new_histogram()
    for item in encoded:
        merged.add(decode(item))
    return merged


def summary_ms(histogram: HdrHistogram) -> dict[str, float]:
    """``{"p50", "p90", "p99", "p999", "max"}`` in milliseconds (all 0.0 when empty)."""
    if histogram.get_total_count() == 0:
        return {**{name: 0.0 for name in SUMMARY_PERCENTILES}, "max": 0.0}
    values = histogram.get_percentile_to_value_dict(list(SUMMARY_PERCENTILES.values()))
    out = {name: values[p] / 1000.0 for name, p in SUMMARY_PERCENTILES.items()}
    out["max"] = histogram.get_max_value() / 1000.0
    return out


def percentile_curve_ms(histogram: HdrHistogram, points: int = 80) -> list[tuple[float, float]]:
    """``(percentile, latency_ms)`` pairs spaced evenly on HdrHistogram's log(1/(1-p)) axis.

    Runs from the 0th percentile to the highest one the sample size can resolve (a histogram
    of 1,000 values says nothing about the 99.99th); the last point carries the max.
    """
    total = histogram.get_total_count()
    if total == 0:
        return []
    # -log10(1 - p) for the last resolvable percentile: 1 - 1/total
    top_nines = math.log10(total) if total > 1 else 0.0
    curve: list[tuple[float, float]] = []
    for i in range(points):
        nines = top_nines * i / max(1, points - 1)
        percentile = 100.0 * (1.0 - 10.0**-nines)
        curve.append((percentile, histogram.get_value_at_percentile(percentile) / 1000.0))
    curve[-1] = (curve[-1][0], histogram.get_max_value() / 1000.0)
    return curve
