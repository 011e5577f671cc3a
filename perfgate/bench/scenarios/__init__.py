"""Benchmark scenarios, as seen from a client process.

A scenario is a class built from the :class:`~perfgate.bench.loadgen.ClientSpec`:
``prepare(nursery)`` sets up what must exist before the load starts (subscribers),
``open_worker()`` is an async context manager yielding one connection's operation, and
``finish(start_at_s)`` waits for trailing deliveries and returns extra result fields.
"""

from __future__ import annotations

from perfgate.bench.scenarios._base import ScenarioClient
from perfgate.bench.scenarios.http import HttpScenario
from perfgate.bench.scenarios.jobs import JobsScenario
from perfgate.bench.scenarios.ws_churn import WsChurnScenario
from perfgate.bench.scenarios.ws_fanout import WsFanoutScenario
from perfgate.bench.scenarios.ws_idle import WsIdleScenario

SCENARIOS: dict[str, type[ScenarioClient]] = {
    "http": HttpScenario,
    "jobs": JobsScenario,
    "jobs-throughput": JobsScenario,
    "ws-fanout": WsFanoutScenario,
    "ws-churn": WsChurnScenario,
    "ws-idle": WsIdleScenario,
}


def get_scenario(name: str) -> type[ScenarioClient]:
    """The scenario class called ``name``; ``KeyError`` names the known ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})") from None


__all__ = ["SCENARIOS", "ScenarioClient", "get_scenario"]
