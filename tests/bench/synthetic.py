"""Synthetic result documents in the result-file schema (docs/architecture.md §7), for gate tests."""

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
    peers: dict[str, float] | None = None,
    machine_scale: float = 1.0,
    machine_noise: float = 0.0,
    host: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A result document. ``peers`` (name -> latency relative to perfgate's baseline) adds
    peers measured run for run beside perfgate; ``machine_scale``/``machine_noise`` slow every
    system of a run alike (a busy host), ``latency_scale`` slows perfgate alone (its code)."""
    rng = random.Random(seed)
    peer_runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    scenarios: dict[str, Any] = {}
    for name, (p50, p99, rate) in SCENARIOS.items():
        run_list = []
        for i in range(runs):
            machine = machine_scale * rng.lognormvariate(0.0, machine_noise)
            jitter = rng.lognormvariate(0.0, noise)
            scale = latency_scale * machine
            lat = {
                "p50": p50 * scale * jitter,
                "p90": p50 * 2 * scale * jitter,
                "p99": p99 * scale * rng.lognormvariate(0.0, noise),
                "p999": p99 * 2 * scale * jitter,
                "max": p99 * 3 * scale * jitter,
            }
            for peer, factor in (peers or {}).items():
                pj = factor * machine * rng.lognormvariate(0.0, noise)
                peer_runs.setdefault(name, {}).setdefault(peer, []).append(
                    {
                        "offered_rate": rate,
                        "achieved_rate": rate,
                        "valid": True,
                        "errors": 0,
                        "latency_ms": {k: v / scale * pj for k, v in lat.items()},
                    }
                )
            achieved = rate * throughput_scale * min(1.0, rng.lognormvariate(0.0, 0.002))
            run_list.append(
                {
                    "offered_rate": rate,
                    "achieved_rate": achieved,
                    "valid": not (invalid_run == name and i == 0),
                    "errors": 0,
                    "latency_ms": lat,
                    **({"host": host} if host is not None else {}),
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
            **({"host": dict(host)} if host is not None else {}),
        }
    peer_doc = {
        name: {
            peer: {
                "system": peer,
                "mode": "open-loop",
                "offered_rate": scenarios[name]["offered_rate"],
                "achieved_rate": scenarios[name]["offered_rate"],
                "errors": 0,
                "latency_ms": peer_list[0]["latency_ms"],
                "runs": peer_list,
            }
            for peer, peer_list in by_peer.items()
        }
        for name, by_peer in peer_runs.items()
    }
    return {
        "schema": "perfgate-bench/1",
        "machine": {"cpu_model": "synthetic", "cores": 2, "python": "3.11.7"},
        "versions": {"perfgate": "0.1.0", "trio": "0.35.0"},
        "settings": {
            "runs": runs,
            "duration_s": 2.0,
            "warmup_s": 1.0,
            "timeout_s": 2.0,
            "processes": 2,
            "mode": "open-loop",
            "subject": "perfgate",
            "scenarios": {
                name: {"scenario": name, "rate_per_s": rate, "duration_s": 2.0, "connections": 8}
                for name, (_, _, rate) in SCENARIOS.items()
            },
        },
        "scenarios": scenarios,
        "peers": peer_doc,
    }
