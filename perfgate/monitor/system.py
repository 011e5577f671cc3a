"""Process and host figures from psutil.

Every call reads ``/proc`` (or the platform's equivalent): a few syscalls that do not block
on anything, so the sampler calls them directly on the trio thread once per tick rather than
paying for a worker thread. CPU percentages are measured between two calls; the first
sample after construction primes the counters and reports 0.

Except one: the count of open file descriptors lists ``/proc/self/fd``, one entry per
socket, so at 10,000 connections it costs more than everything else in a sample together
(it showed in the idle server's profile). It is counted once every :data:`FDS_EVERY`
samples, and the samples between repeat the last count.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import attrs
import psutil

FDS_EVERY = 10
"""Open file descriptors are counted at every this many samples (the first included)."""


@attrs.frozen
class SystemSample:
    process_cpu_pct: float = 0.0  # percent of one core (may exceed 100 with threads)
    host_cpu_pct: float = 0.0  # percent of all cores
    process_rss_bytes: int = 0
    host_memory_pct: float = 0.0
    open_fds: int | None = None  # None where the platform has no such figure
    threads: int = 0
    cpu_count: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "process_cpu_pct": round(self.process_cpu_pct, 1),
            "host_cpu_pct": round(self.host_cpu_pct, 1),
            "process_rss_bytes": self.process_rss_bytes,
            "host_memory_pct": round(self.host_memory_pct, 1),
            "open_fds": self.open_fds,
            "threads": self.threads,
            "cpu_count": self.cpu_count,
        }


class SystemSampler:
    """Samples this process and the host. Not thread-safe; one owner calls :meth:`sample`."""

    def __init__(self, pid: int | None = None) -> None:
        self._process = psutil.Process(pid or os.getpid())
        self._cpu_count = psutil.cpu_count() or 1
        self.latest = SystemSample(cpu_count=self._cpu_count)
        self._samples = 0
        # Prime the CPU counters: psutil measures from the previous call.
        self._process.cpu_percent(interval=None)
        psutil.cpu_percent(interval=None)

    def sample(self) -> SystemSample:
        process = self._process
        with process.oneshot():
            cpu = process.cpu_percent(interval=None)
            rss = process.memory_info().rss
            threads = process.num_threads()
            fds = self.latest.open_fds
            if self._samples % FDS_EVERY == 0:
                fds = None
                with contextlib.suppress(AttributeError, psutil.Error):
                    fds = process.num_fds()
        self._samples += 1
        self.latest = SystemSample(
            process_cpu_pct=cpu,
            host_cpu_pct=psutil.cpu_percent(interval=None),
            process_rss_bytes=rss,
            host_memory_pct=psutil.virtual_memory().percent,
            open_fds=fds,
            threads=threads,
            cpu_count=self._cpu_count,
        )
        return self.latest
