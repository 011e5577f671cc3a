"""Every field of every stats snapshot feeds a Prometheus series, or says why not: a field
added without a series, or a series whose field was removed, fails here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
from prometheus_client.parser import text_string_to_metric_families

import perfgate.snapshots
from perfgate.config import MonitorConfig
from perfgate.monitor import Monitor
from perfgate.monitor.snapshot_series import EXPORTED, NOT_EXPORTED
from tests.monitor.snapshots import (
    cache_snapshot,
    edge_snapshot,
    jobs_snapshot,
    journal_snapshot,
    pool_snapshot,
)

SOURCES = {
    "pool": pool_snapshot(),
    "cache": cache_snapshot(),
    "jobs": jobs_snapshot(),
    "journal": journal_snapshot(),
    "http": edge_snapshot(),
}
SNAPSHOT_CLASSES = [
    value
    for value in vars(perfgate.snapshots).values()
    if isinstance(value, type) and attrs.has(value) and value.__module__ == "perfgate.snapshots"
]


def fields_of(snapshot: Any) -> Iterator[tuple[type, str, Any]]:
    """Every (class, field, value) of a snapshot and of the snapshots nested in it."""
    for field in attrs.fields(type(snapshot)):
        value = getattr(snapshot, field.name)
        yield type(snapshot), field.name, value
        nested = value.values() if isinstance(value, dict) else [value]
        for item in nested:
            if attrs.has(type(item)):
                yield from fields_of(item)


def test_every_field_is_exported_or_says_why_not() -> None:
    for cls in SNAPSHOT_CLASSES:
        for field in attrs.fields(cls):
            exported = field.name in EXPORTED.get(cls, {})
            skipped = (cls, field.name) in NOT_EXPORTED
            assert exported != skipped, f"{cls.__name__}.{field.name}: a series, or a reason"
    for cls, names in EXPORTED.items():
        assert set(names) <= set(attrs.fields_dict(cls)), cls
    for cls, name in NOT_EXPORTED:
        assert name in attrs.fields_dict(cls), (cls, name)


def test_the_collector_exports_the_series_of_every_field() -> None:
    monitor = Monitor(MonitorConfig())
    for name, snapshot in SOURCES.items():
        monitor.add_source(name, lambda snapshot=snapshot: snapshot)
    body, _ = monitor.render_metrics()
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    seen: set[tuple[type, str]] = set()
    for snapshot in SOURCES.values():
        for cls, name, value in fields_of(snapshot):
            series = EXPORTED.get(cls, {}).get(name)
            if series is None:
                continue
            seen.add((cls, name))
            assert series in families, f"{cls.__name__}.{name}: no {series}"
            values = [sample.value for sample in families[series].samples]
            # A flag may shape another figure (held: the jobs it holds back), so only numbers
            # are looked for by value.
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert float(value) in values, f"{cls.__name__}.{name}={value}: {series} {values}"
            else:
                assert values, f"{cls.__name__}.{name}: {series} is empty"
    # The sample snapshots reach every exported field (so the loop above checked them all).
    assert seen == {(cls, name) for cls, names in EXPORTED.items() for name in names}
