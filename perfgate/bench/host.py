"""The host's state while a run measures: is the machine the one the baseline was measured on?

A run's latency answers for the code only if the machine was as quiet as it was for the
baseline. Around every run the suite takes a :class:`HostSample` (``sample``, the only I/O
here: psutil and ``/proc``); :func:`state_between` turns two samples into the run's state:

- ``load_per_core``: the 1-minute load average at the end of the run, per core;
- ``steal_pct``: CPU time the hypervisor gave to other guests, % of the machine;
- ``others_cpu_pct``: CPU time used by processes outside the bench's own tree (the suite,
  its clients, the servers under test and their workers), % of the machine;
- ``freq_mhz``: the mean current CPU frequency, where the platform exposes it (else None).

:func:`host_difference` says, as one phrase, how a current host is *busier* than the
baseline's (a quieter host cannot fake a regression, so it is never held against a result).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from typing import Any

import attrs

#: Material differences (current minus baseline) past which a regression is inconclusive.
#: Others' CPU: 15 % of the machine is a third of a core on 2 cores; one busy neighbour
#: process takes 50 %. Steal: 5 % of the machine. Load: half a runnable task per core more.
#: Frequency: 10 % lower (thermal throttling or a power-saving governor).
MAX_OTHERS_CPU_PCT_INCREASE = 15.0
MAX_STEAL_PCT_INCREASE = 5.0
MAX_LOAD_PER_CORE_INCREASE = 0.5
MIN_FREQ_FRACTION = 0.9

STATE_KEYS = ("load_per_core", "steal_pct", "others_cpu_pct", "freq_mhz")


@attrs.frozen
class HostSample:
    """Cumulative counters at one instant (CPU times in seconds, summed over all cores)."""

    cpu_total_s: float
    cpu_idle_s: float
    cpu_steal_s: float
    own_cpu_s: float
    load_1m: float
    cores: int
    freq_mhz: float | None


def state_between(before: HostSample, after: HostSample) -> dict[str, float | None]:
    """The host's state over the interval between two samples (pure)."""
    total = after.cpu_total_s - before.cpu_total_s
    if total <= 0:
        steal_pct = others_pct = 0.0
    else:
        steal = max(0.0, after.cpu_steal_s - before.cpu_steal_s)
        idle = max(0.0, after.cpu_idle_s - before.cpu_idle_s)
        own = max(0.0, after.own_cpu_s - before.own_cpu_s)
        busy = max(0.0, total - idle - steal)
        steal_pct = 100.0 * steal / total
        others_pct = 100.0 * max(0.0, busy - own) / total
    freqs = [f for f in (before.freq_mhz, after.freq_mhz) if f]
    return {
        "load_per_core": round(after.load_1m / max(1, after.cores), 3),
        "steal_pct": round(steal_pct, 2),
        "others_cpu_pct": round(others_pct, 2),
        "freq_mhz": round(statistics.fmean(freqs), 1) if freqs else None,
    }


def summarise(states: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """The median of each key over runs (a disturbance in a minority of runs does not move
    the medians the gate compares, so it does not count here either)."""
    out: dict[str, float | None] = {}
    for key in STATE_KEYS:
        values = [float(s[key]) for s in states if isinstance(s.get(key), int | float)]
        out[key] = round(statistics.median(values), 3) if values else None
    return out


def host_difference(baseline: dict[str, Any], current: dict[str, Any]) -> str | None:
    """How ``current`` is materially busier or slower than ``baseline``, or None (pure).

    Keys missing on either side are not compared (an older result did not record them).
    """

    def pair(key: str) -> tuple[float, float] | None:
        b, c = baseline.get(key), current.get(key)
        if isinstance(b, int | float) and isinstance(c, int | float):
            return float(b), float(c)
        return None

    reasons = []
    if (p := pair("others_cpu_pct")) and p[1] - p[0] > MAX_OTHERS_CPU_PCT_INCREASE:
        reasons.append(f"other processes used {p[1]:.0f} % of the CPU vs {p[0]:.0f} %")
    if (p := pair("steal_pct")) and p[1] - p[0] > MAX_STEAL_PCT_INCREASE:
        reasons.append(f"CPU steal {p[1]:.1f} % vs {p[0]:.1f} %")
    if (p := pair("load_per_core")) and p[1] - p[0] > MAX_LOAD_PER_CORE_INCREASE:
        reasons.append(f"load per core {p[1]:.2f} vs {p[0]:.2f}")
    if (p := pair("freq_mhz")) and p[0] > 0 and p[1] < MIN_FREQ_FRACTION * p[0]:
        reasons.append(f"CPU clock {p[1]:.0f} MHz vs {p[0]:.0f} MHz")
    return "; ".join(reasons) or None


def _own_cpu_s(psutil: Any, pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants, reaped ones included (children_*)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue  # exited between listing and reading
        total += t.user + t.system + t.children_user + t.children_system
    return total


def sample(pid: int | None = None) -> HostSample:
    """Read the counters now (psutil; a few milliseconds). ``pid``: the bench's root process."""
    import psutil

    times = psutil.cpu_times()
    fields = times._asdict()
    # guest time is already counted in user/nice on Linux
    total = sum(v for k, v in fields.items() if k not in ("guest", "guest_nice"))
    idle = fields.get("idle", 0.0) + fields.get("iowait", 0.0)
    freq: float | None = None
    try:
        current = psutil.cpu_freq()
        if current is not None and current.current > 0:
            freq = float(current.current)
    except (OSError, NotImplementedError, AttributeError):
        freq = None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return HostSample(
        cpu_total_s=total,
        cpu_idle_s=idle,
        cpu_steal_s=fields.get("steal", 0.0),
        own_cpu_s=_own_cpu_s(psutil, os.getpid() if pid is None else pid),
        load_1m=load,
        cores=psutil.cpu_count() or 1,
        freq_mhz=freq,
    )
