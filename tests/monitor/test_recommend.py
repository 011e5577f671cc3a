"""Recommendations: each names the figure that triggered it."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from perfgate.config import MonitorConfig
from perfgate.monitor.recommend import queue_depth, recommend
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


@given(json_values, json_values, json_values, json_values)
def test_any_shape_of_stats_is_tolerated(pool: Any, gateway: Any, cache: Any, system: Any) -> None:
    as_dict = lambda v: v if isinstance(v, dict) else None  # noqa: E731
    recommend(
        CONFIG,
        system=system if isinstance(system, dict) else {},
        http_total=WindowStats(),
        pool=as_dict(pool),
        gateway=as_dict(gateway),
        cache=as_dict(cache),
    )
    queue_depth(as_dict(pool))


def test_non_finite_figures_are_ignored() -> None:
    pool = {"queue": {"high": float("nan"), "normal": float("inf"), "low": 3}}
    assert queue_depth(pool) == 3
