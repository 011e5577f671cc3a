"""Synthetic result documents in the DESIGN.md §7 schema, for gate tests."""

from __future__ import annotations

import random
from typing import Any

SCENARIOS = {"http": (2.0, 8.0, 200.0), "jobs": (6.0, 20.0, 20.0)}


def result(
    *,
    seed: int,
    latency_scale: float = 1.0,
    throughput_scale: float = 1.0,
    runs: int = 5,
    noise: float = 0.05,
    invalid_run: str | None = None,
) -> dict[str, Any]:
    rng = random.Random(seed)
    scenarios: dict[str, Any] = {}
    for name, (p50, p99, rate) in SCENARIOS.items():
        run_list = []
        for i in range(runs):
            jitter = rng.lognormvariate(0.0, noise)
            lat = {
                "p50": p50 * latency_scale * jitter,
                "p90": p50 * 2 * latency_scale * jitter,
                "p99": p99 * latency_scale * rng.lognormvariate(0.0, noise),
                "p999": p99 * 2 * latency_scale * jitter,
                "max": p99 * 3 * latency_scale * jitter,
            }
            achieved = rate * throughput_scale * min(1.0, rng.lognormvariate(0.0, 0.002))
            run_list.append(
                {
                    "offered_rate": rate,
                    "achieved_rate": achieved,
                    "valid": not (invalid_run == name and i == 0),
                    "errors": 0,
                    "latency_ms": lat,
                }
            )
        scenarios[name] = {
            "system": "perfgate",
            "mode": "open-loop",
            "offered_rate": rate,
            "achieved_rate": sum(r["achieved_rate"] for r in run_list) / runs,
            "errors": 0,
            "valid": all(r["valid"] for r in run_list),
            "latency_ms": run_list[0]["latency_ms"],
            "runs": run_list,
        }
    return {
        "schema": "perfgate-bench/1",
        "machine": {"cpu_model": "synthetic", "cores": 2},
        "versions": {"perfgate": "0.1.0"},
        "scenarios": scenarios,
        "peers": {},
    }
