"""Prometheus's own linter on what perfgate exposes and ships: ``promtool check metrics`` on a
live ``/metrics`` scrape, ``promtool check rules`` on deploy/prometheus/, and the Grafana
dashboard's queries against the series that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from perfgate.config import MonitorConfig
from perfgate.monitor import alerts
from perfgate.monitor.regression import Regression
from perfgate.monitor.window import WindowStats

DEPLOY = Path(__file__).parent.parent.parent / "deploy"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"  # .ci/system-packages.txt


def promtool(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=30
    )


async def scrape(service_factory: Any) -> str:
    service = await service_factory()
    async with httpx.AsyncClient(base_url=service.http, timeout=30) as http:
        job = (await http.post("/v1/jobs", json={"task": "echo"})).json()
        await http.get(f"/v1/jobs/{job['id']}?wait=20")
        await http.post("/v1/channels/news/messages", json={"data": 1})
        return (await http.get("/metrics")).text


async def test_promtool_finds_nothing_to_say_about_the_exposition(service_factory: Any) -> None:
    text = await scrape(service_factory)
    checked = promtool("check", "metrics", stdin=text)
    # promtool prints lint problems and exits non-zero for them; silence is a pass.
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
    # What promtool does not check: base units, and the standard process series' names.
    names = exposed_names(text)
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
    assert not [n for n in names if n.startswith("perfgate_process_")]
    units = r"_(percent|pct|ms|milliseconds|minutes|hours|kb|mb|kib|mib)(_|$)"
    assert not [n for n in names if re.search(units, n)]


def exposed_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)  # declared even while it has no sample (no alert active)
        names.update(sample.name for sample in family.samples)
    return names


def rule_files() -> list[Path]:
    return sorted((DEPLOY / "prometheus").glob("*.yml"))


def test_the_alert_rules_pass_promtool() -> None:
    assert rule_files()
    checked = promtool("check", "rules", *map(str, rule_files()))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def built_in_rules() -> set[str]:
    """Every rule name perfgate's own alerting can raise, asked of the code itself."""
    checks = alerts.threshold_checks(
        MonitorConfig(),
        system={"process_cpu_pct": 1.0, "host_cpu_pct": 1.0, "host_memory_pct": 1.0},
        routes={"/v1/jobs": WindowStats(count=1, duration_s=1.0)},
        queue_depth=1,
        min_samples=0,
    )
    regression = Regression("/v1/jobs", "p99_ms", 1.0, 2.0, 100.0, 1.0, "critical")
    checks += alerts.regression_checks([regression], 15.0)
    return {check.rule for check in checks}


def test_the_alert_rules_mirror_every_built_in_alert() -> None:
    mirrored = {
        rule["labels"]["perfgate_rule"]
        for path in rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }
    assert mirrored == built_in_rules()


#: PromQL words that are not series names.
_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "sum", "avg", "max",
    "min", "count", "rate", "irate", "increase", "histogram_quantile", "le", "and", "or",
    "unless", "offset", "bool", "clamp_min", "topk", "vector", "abs", "time",
}  # fmt: skip


def series_in(expr: str) -> set[str]:
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\"[^\"]*\"", "", expr)
    words = set(re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {w for w in words if w not in _PROMQL_WORDS and not w.startswith("$")}


async def test_every_query_names_a_series_perfgate_exposes(service_factory: Any) -> None:
    exposed = exposed_names(await scrape(service_factory))
    dashboard = json.loads((DEPLOY / "grafana" / "perfgate.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    exprs += [
        rule["expr"]
        for path in rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]
    assert len(exprs) > 5
    for expr in exprs:
        missing = series_in(expr) - exposed
        assert not missing, (expr, missing)
