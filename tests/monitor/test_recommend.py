"""Recommendations: each names the figure that triggered it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from perfgate.config import MonitorConfig
from perfgate.monitor.recommend import number, queue_depth, recommend
from perfgate.monitor.window import WindowStats

CONFIG = MonitorConfig()
CALM = {"process_cpu_pct": 10.0, "host_cpu_pct": 10.0, "host_memory_pct": 30.0}


def codes(**kwargs: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "system": CALM,
        "http_total": WindowStats(),
        "pool": None,
        "gateway": None,
        "cache": None,
    }
    base.update(kwargs)
    return {r.code: r for r in recommend(CONFIG, **base)}


def test_nothing_to_say_when_calm_or_unknown() -> None:
    assert codes() == {}
    assert codes(pool={}, gateway={}, cache={}) == {}


def test_queue_high_with_workers_at_max_says_raise_max_workers() -> None:
    pool = {"workers": {"idle": 0, "busy": 4, "total": 4}, "queue": {"high": 90, "low": 30}}
    found = codes(pool=pool)["raise-max-workers"]
    assert found.figure == "pool.queue_depth" and found.value == 120
    assert "max_workers" in found.message


def test_queue_high_while_still_scaling_says_nothing() -> None:
    pool = {"workers": {"idle": 0, "busy": 2, "total": 2, "max": 8}, "queue": {"normal": 500}}
    assert codes(pool=pool) == {}


def test_queue_high_and_cpu_saturated_says_add_instances_not_workers() -> None:
    pool = {"workers": {"idle": 0, "busy": 4, "total": 4}, "queue": {"normal": 500}}
    found = codes(pool=pool, system={**CALM, "host_cpu_pct": 97.0})
    assert set(found) == {"add-capacity"}


def test_slow_consumers_cache_and_idle_workers() -> None:
    found = codes(
        gateway={"messages_sent": 1000, "messages_dropped": 50},
        cache={"l1": {"hits": 10, "misses": 190, "evictions": 40}, "l2": {"hits": 1}},
        pool={"workers": {"idle": 7, "busy": 1, "total": 8}, "queue": {"normal": 0}},
    )
    assert set(found) == {"slow-consumers", "cache-l1-small", "fewer-workers"}
    assert found["cache-l1-small"].figure == "cache.l1.hit_rate_pct"
    assert found["cache-l1-small"].value == 5.0


def test_saturated_loop() -> None:
    found = codes(
        system={**CALM, "process_cpu_pct": 99.0},
        http_total=WindowStats(count=1000, duration_s=60, p99_ms=800.0),
    )
    assert set(found) == {"loop-saturated"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


_numbers = st.integers(0, 200) | st.integers(-10, 10**4) | st.floats(allow_nan=True) | json_values


def _shaped(**keys: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A stats dict with some of the real keys (arbitrary values), or anything at all."""
    return st.fixed_dictionaries({}, optional=keys) | json_values


_pools = _shaped(
    queue=_shaped(high=_numbers, normal=_numbers, low=_numbers),
    workers=_shaped(busy=_numbers, total=_numbers, idle=_numbers, max=_numbers),
)
_gateways = _shaped(messages_dropped=_numbers, messages_sent=_numbers)
_tier = _shaped(hits=_numbers, misses=_numbers, evictions=_numbers)
_caches = _shaped(l1=_tier, l2=_tier)
_systems = _shaped(process_cpu_pct=_numbers, host_cpu_pct=_numbers, host_memory_pct=_numbers)


@settings(max_examples=500)
@given(_pools, _gateways, _caches, _systems, st.floats(0, 5000))
def test_any_shape_of_stats_is_tolerated_and_each_advice_names_its_figure(
    pool: Any, gateway: Any, cache: Any, system: Any, p99_ms: float
) -> None:
    as_dict = lambda v: v if isinstance(v, dict) else None  # noqa: E731
    system = system if isinstance(system, dict) else {}
    found = recommend(
        CONFIG,
        system=system,
        http_total=WindowStats(count=100, duration_s=60, p99_ms=p99_ms),
        pool=as_dict(pool),
        gateway=as_dict(gateway),
        cache=as_dict(cache),
    )
    depth = queue_depth(as_dict(pool))
    if isinstance(pool, dict) and isinstance(pool.get("queue"), dict):
        queue = pool["queue"]
        assert depth == int(sum(number(queue, p) or 0 for p in ("high", "normal", "low")))
    else:
        assert depth is None
    assert len({r.code for r in found}) == len(found)  # each piece of advice once
    figures = {
        "pool.queue_depth": depth,
        "pool.workers.idle": number(as_dict(pool), "workers", "idle"),
        "system.process_cpu_pct": number(system, "process_cpu_pct"),
        "system.host_memory_pct": number(system, "host_memory_pct"),
        "gateway.messages_dropped": number(as_dict(gateway), "messages_dropped"),
    }
    for tier in ("l1", "l2"):
        hits = number(as_dict(cache), tier, "hits")
        misses = number(as_dict(cache), tier, "misses")
        if hits is not None and misses is not None and hits + misses > 0:
            figures[f"cache.{tier}.hit_rate_pct"] = 100.0 * hits / (hits + misses)
    for advice in found:
        # The figure it names, with the value it was read with: a reader can check it.
        assert advice.value == figures[advice.figure], advice
        assert json.loads(json.dumps(advice.to_json(), allow_nan=False))["code"] == advice.code
