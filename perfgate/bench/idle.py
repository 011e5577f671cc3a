"""What idle connections cost a server: RSS per connection, CPU over a window.

:func:`idle_summary` is pure (the samples are passed in); :class:`ServerProbe` reads them
from the server's process with psutil (the main process only: perfgate's pool workers hold
no connection).
"""

from __future__ import annotations

from typing import Any

import psutil


class ServerProbe:
    """Samples of one server process's RSS (bytes) and CPU time (user + system seconds)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)

    def rss_bytes(self) -> int:
        rss: int = self.process.memory_info().rss
        return rss

    def cpu_s(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)


def idle_summary(
    *,
    connections: int,
    fresh_rss_bytes: int,
    rss_bytes: int,
    cpu_s: float,
    window_s: float,
) -> dict[str, Any]:
    """The ``idle`` block of a run: ``bytes_per_connection`` is the RSS delta over the fresh
    server divided by the connections held; ``cpu_percent`` is of one core over the window."""
    delta = rss_bytes - fresh_rss_bytes
    return {
        "connections": connections,
        "fresh_rss_bytes": fresh_rss_bytes,
        "rss_bytes": rss_bytes,
        "rss_delta_bytes": delta,
        "bytes_per_connection": delta / connections if connections > 0 else None,
        "window_s": window_s,
        "cpu_s": cpu_s,
        "cpu_percent": 100.0 * cpu_s / window_s if window_s > 0 else None,
    }
