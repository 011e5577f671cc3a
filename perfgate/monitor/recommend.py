"""Recommendations: what an operator could change, derived from the figures. Pure.

Each :class:`Recommendation` names the figure that triggered it and its value, so that a
reader can check the reasoning on the dashboard. The rules are deliberately few and
conservative; each fires only on evidence that is not a single sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from perfgate.config import MonitorConfig
from perfgate.monitor.window import WindowStats
from perfgate.priorities import PRIORITIES

MIN_CACHE_LOOKUPS = 100
LOW_HIT_RATE_PCT = 50.0


@attrs.frozen
class Recommendation:
    code: str
    figure: str
    value: float
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "figure": self.figure,
            "value": round(self.value, 3),
            "message": self.message,
        }


def number(mapping: Mapping[str, Any] | None, *path: str) -> float | None:
    """``mapping[path[0]][path[1]]...`` as a float, or ``None`` when any step is missing."""
    node: Any = mapping
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node):
        return None
    return float(node)


def queue_depth(pool: Mapping[str, Any] | None) -> int | None:
    """Total queued jobs over all priorities (``queue`` of the pool's snapshot, as JSON), or ``None``."""
    depths = pool.get("queue") if pool else None
    if not isinstance(depths, Mapping):
        return None
    return int(sum(number(depths, key) or 0 for key in PRIORITIES))


def recommend(
    config: MonitorConfig,
    *,
    system: Mapping[str, Any],
    http_total: WindowStats,
    pool: Mapping[str, Any] | None,
    gateway: Mapping[str, Any] | None,
    cache: Mapping[str, Any] | None,
) -> list[Recommendation]:
    """Recommendations for the current figures (an empty list when all looks fine)."""
    out: list[Recommendation] = []
    depth = queue_depth(pool)
    busy = number(pool, "workers", "busy")
    total = number(pool, "workers", "total")
    idle = number(pool, "workers", "idle")
    maximum = number(pool, "workers", "max")
    host_cpu = number(system, "host_cpu_pct")
    process_cpu = number(system, "process_cpu_pct")

    if depth is not None and depth >= config.queue_depth_alert and total:
        at_max = total >= maximum if maximum is not None else (busy or 0) >= total
        if at_max and host_cpu is not None and host_cpu >= config.cpu_alert_pct:
            out.append(
                Recommendation(
                    "add-capacity",
                    "pool.queue_depth",
                    depth,
                    f"queue depth {depth} with every worker busy and host CPU at "
                    f"{host_cpu:.0f}%: more workers would only compete for CPU; add instances "
                    "(--broker redis://) or make tasks cheaper",
                )
            )
        elif at_max:
            out.append(
                Recommendation(
                    "raise-max-workers",
                    "pool.queue_depth",
                    depth,
                    f"queue depth {depth} and workers at max ({total:.0f} busy): "
                    "raise [pool] max_workers",
                )
            )
    if idle is not None and total and total >= 4 and idle / total >= 0.75 and not depth:
        out.append(
            Recommendation(
                "fewer-workers",
                "pool.workers.idle",
                idle,
                f"{idle:.0f} of {total:.0f} workers idle with an empty queue: "
                "[pool] min_workers could be lower",
            )
        )
    if (
        process_cpu is not None
        and process_cpu >= config.cpu_alert_pct
        and http_total.count
        and http_total.p99_ms >= config.p99_alert_ms
    ):
        out.append(
            Recommendation(
                "loop-saturated",
                "system.process_cpu_pct",
                process_cpu,
                f"the server process uses {process_cpu:.0f}% of a core and HTTP p99 is "
                f"{http_total.p99_ms:.0f} ms: the event loop is saturated; run more "
                "instances behind the proxy",
            )
        )
    dropped = number(gateway, "messages_dropped")
    sent = number(gateway, "messages_sent")
    if dropped and sent is not None and dropped >= 0.01 * (sent + dropped):
        out.append(
            Recommendation(
                "slow-consumers",
                "gateway.messages_dropped",
                dropped,
                f"{dropped:.0f} WebSocket messages dropped for slow consumers "
                f"({100 * dropped / (sent + dropped):.1f}%): raise [gateway] queue_bytes, "
                "or publish less often to busy channels",
            )
        )
    for tier, setting in (("l1", "memory_bytes"), ("l2", "disk_bytes")):
        hits = number(cache, tier, "hits")
        misses = number(cache, tier, "misses")
        evictions = number(cache, tier, "evictions")
        if hits is None or misses is None or hits + misses < MIN_CACHE_LOOKUPS:
            continue
        hit_rate = 100.0 * hits / (hits + misses)
        if hit_rate < LOW_HIT_RATE_PCT and evictions:
            out.append(
                Recommendation(
                    f"cache-{tier}-small",
                    f"cache.{tier}.hit_rate_pct",
                    hit_rate,
                    f"cache {tier} hit rate {hit_rate:.0f}% with {evictions:.0f} evictions: "
                    f"raise [cache] {setting}",
                )
            )
    memory = number(system, "host_memory_pct")
    if memory is not None and memory >= config.memory_alert_pct and total:
        out.append(
            Recommendation(
                "memory-pressure",
                "system.host_memory_pct",
                memory,
                f"host memory at {memory:.0f}%: lower [pool] max_worker_rss_mb or max_workers",
            )
        )
    return out
