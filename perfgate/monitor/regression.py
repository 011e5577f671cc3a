"""Regression detection: is this window's p99 or throughput worse than the baseline window's?

Pure. A change is reported only when all of these hold:

- both windows hold at least ``min_samples`` observations (a p99 of a handful of samples is
  just its maximum, and says nothing);
- the change is worse than ``warn_pct`` (``critical`` past ``critical_pct``);
- the change is outside the baseline's own noise. The baseline window is cut into slices; the
  spread of the per-slice figures (their standard deviation, ``sd``) says how much the figure
  wobbles on its own. A whole window averages ``k`` slices, so its figure wobbles by about
  ``sd / sqrt(k)``, and the difference of two windows by ``sqrt(2 / k) * sd``; a change must
  exceed ``noise_sigmas`` times that. Slices with fewer than ``min_slice_samples``
  observations are left out of the p99 spread (their p99 is their max).

For p99, higher is worse; for throughput, lower is worse. A drop in throughput can also mean
that clients sent less: the detector reports it, and the message says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from perfgate.monitor.window import WindowStats

Severity = Literal["warning", "critical"]
Metric = Literal["p99_ms", "throughput_per_s"]


@attrs.frozen
class RegressionPolicy:
    warn_pct: float = 15.0
    critical_pct: float = 30.0
    min_samples: int = 100
    min_slice_samples: int = 10
    noise_sigmas: float = 3.0


@attrs.frozen
class Regression:
    series: str
    metric: Metric
    baseline: float
    current: float
    worse_pct: float
    noise_pct: float
    severity: Severity

    @property
    def message(self) -> str:
        what = "p99 latency" if self.metric == "p99_ms" else "throughput"
        text = (
            f"{self.series}: {what} {self.worse_pct:.0f}% worse than the baseline window "
            f"({self.baseline:.3g} -> {self.current:.3g}; noise ±{self.noise_pct:.0f}%)"
        )
        if self.metric == "throughput_per_s":
            text += " (or fewer requests were offered)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "metric": self.metric,
            "baseline": round(self.baseline, 3),
            "current": round(self.current, 3),
            "worse_pct": round(self.worse_pct, 1),
            "noise_pct": round(self.noise_pct, 1),
            "severity": self.severity,
            "message": self.message,
        }


def noise_band(values: Sequence[float], reference: float, sigmas: float) -> float | None:
    """The change (absolute, in the figure's unit) that the baseline's noise can explain.

    ``None`` when there are too few slices to estimate it (fewer than 3).
    """
    if len(values) < 3 or reference <= 0:
        return None
    sd = statistics.stdev(values)
    return sigmas * math.sqrt(2.0 / len(values)) * sd


def _judge(
    series: str,
    metric: Metric,
    baseline: float,
    current: float,
    slice_values: Sequence[float],
    policy: RegressionPolicy,
) -> Regression | None:
    if baseline <= 0:
        return None
    worse = current - baseline if metric == "p99_ms" else baseline - current
    worse_pct = 100.0 * worse / baseline
    if worse_pct <= policy.warn_pct:
        return None
    band = noise_band(slice_values, baseline, policy.noise_sigmas)
    if band is None or worse <= band:
        return None
    severity: Severity = "critical" if worse_pct > policy.critical_pct else "warning"
    return Regression(
        series=series,
        metric=metric,
        baseline=baseline,
        current=current,
        worse_pct=worse_pct,
        noise_pct=100.0 * band / baseline,
        severity=severity,
    )


def detect(
    series: str,
    current: WindowStats,
    baseline: WindowStats,
    baseline_slices: Sequence[WindowStats],
    policy: RegressionPolicy = RegressionPolicy(),
) -> list[Regression]:
    """Compare one series' current window with its baseline window (see the module doc)."""
    if current.count < policy.min_samples or baseline.count < policy.min_samples:
        return []
    found = []
    p99s = [s.p99_ms for s in baseline_slices if s.count >= policy.min_slice_samples]
    p99 = _judge(series, "p99_ms", baseline.p99_ms, current.p99_ms, p99s, policy)
    if p99 is not None:
        found.append(p99)
    rates = [s.throughput_per_s for s in baseline_slices if s.duration_s > 0]
    rate = _judge(
        series,
        "throughput_per_s",
        baseline.throughput_per_s,
        current.throughput_per_s,
        rates,
        policy,
    )
    if rate is not None:
        found.append(rate)
    return found
