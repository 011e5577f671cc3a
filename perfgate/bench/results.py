"""The result file (docs/architecture.md §7): build it, validate it, write it, read it.

Top level: ``{"schema", "created_at", "machine", "versions", "settings", "scenarios",
"peers"}``. A scenario (and each peer's entry) is::

    {"system", "mode", "offered_rate", "achieved_rate", "valid", "errors", "timeouts",
     "requests", "latency_ms": {p50, p90, p99, p999, max}, "uncorrected_latency_ms": {...},
     "send_lag_ms": {...}, "histogram": HDR-base64, "uncorrected_histogram": HDR-base64,
     "runs": [{"achieved_rate", "offered_rate", "valid", "latency_ms", ...}, ...]}

``peers`` is ``{SCENARIO: {PEER: {...same fields..., "ratio": {p50, p90, p99, p999, max,
"throughput"}}}}`` where ``ratio`` is perfgate/peer (latency: > 1 means perfgate is slower;
throughput: < 1 means perfgate achieved less).

A scenario may carry ``variants``: ``{VARIANT: entry}``, perfgate measured another way in
the same interleaved run (``perfgate-client``, ``perfgate-redis``); each peer then also has
``ratios``: ``{SYSTEM: {...as ratio...}}`` for the subject and every variant. ``ws-idle``
entries (runs and the entry) carry ``idle``: ``{connections, bytes_per_connection,
cpu_percent, ...}`` (:func:`perfgate.bench.idle.idle_summary`), and their ratios
``bytes_per_connection`` and ``idle_cpu`` (perfgate/peer: above 1 costs more).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfgate.bench import host
from perfgate.bench.schedule import is_valid

if TYPE_CHECKING:
    from perfgate.bench.runner import RunOutcome

SCHEMA = "perfgate-bench/1"
PERCENTILE_KEYS = ("p50", "p90", "p99", "p999", "max")
_PACKAGES = (
    "perfgate",
    "trio",
    "hypercorn",
    "quart-trio",
    "trio-websocket",
    "httpx",
    "uvicorn",
    "websockets",
    "celery",
    "arq",
    "redis",
    "hdrhistogram",
    "h11",
    "psutil",
    "attrs",
)


class ResultError(ValueError):
    """A result file that cannot be read or does not match the schema."""


def summarise_runs(system: str, runs: Sequence[RunOutcome]) -> dict[str, Any]:
    """A scenario entry from its runs: histograms merged over runs, rates averaged."""
    # histograms (hdrhistogram) load only when measuring: `perfgate gate` reads files alone
    from perfgate.bench import histogram as hdr

    if not runs:
        raise ValueError("no runs")
    corrected, uncorrected = hdr.new_histogram(), hdr.new_histogram()
    for run in runs:
        corrected.add(run.corrected)
        uncorrected.add(run.uncorrected)
    summaries = [run.summary for run in runs]
    entry: dict[str, Any] = {
        "system": system,
        "mode": summaries[0]["mode"],
        "offered_rate": statistics.fmean(s["offered_rate"] for s in summaries),
        "achieved_rate": statistics.fmean(s["achieved_rate"] for s in summaries),
        "valid": all(s["valid"] for s in summaries),
        "invalid_runs": sum(1 for s in summaries if not s["valid"]),
        "requests": sum(s["requests"] for s in summaries),
        "errors": sum(s["errors"] for s in summaries),
        "timeouts": sum(s["timeouts"] for s in summaries),
        "latency_ms": hdr.summary_ms(corrected),
        "uncorrected_latency_ms": hdr.summary_ms(uncorrected),
        "send_lag_ms": {
            "p50": statistics.median(s["send_lag_ms"]["p50"] for s in summaries),
            "p99": max(s["send_lag_ms"]["p99"] for s in summaries),
            "max": max(s["send_lag_ms"]["max"] for s in summaries),
        },
        "histogram": hdr.encode(corrected),
        "uncorrected_histogram": hdr.encode(uncorrected),
        "runs": summaries,
    }
    states = [s["host"] for s in summaries if isinstance(s.get("host"), dict)]
    if states:
        entry["host"] = host.summarise(states)
    for key in ("lost", "duplicated", "published", "deliveries"):
        if key in summaries[0]:
            entry[key] = sum(s.get(key, 0) for s in summaries)
    idle = [s["idle"] for s in summaries if isinstance(s.get("idle"), dict)]
    if idle:
        entry["idle"] = summarise_idle(idle)
    return entry


def summarise_idle(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs of the ``idle`` blocks (one disturbed run does not decide)."""

    def median(key: str) -> float | None:
        values = [float(r[key]) for r in runs if _number(r.get(key))]
        return statistics.median(values) if values else None

    return {
        "connections": median("connections"),
        "fresh_rss_bytes": median("fresh_rss_bytes"),
        "rss_delta_bytes": median("rss_delta_bytes"),
        "bytes_per_connection": median("bytes_per_connection"),
        "window_s": median("window_s"),
        "cpu_percent": median("cpu_percent"),
    }


def peer_ratio(subject: dict[str, Any], peer: dict[str, Any]) -> dict[str, float | None]:
    """perfgate/peer per percentile, and for throughput (None where the peer's value is 0)."""
    out: dict[str, float | None] = {}
    for key in PERCENTILE_KEYS:
        theirs = peer["latency_ms"][key]
        out[key] = subject["latency_ms"][key] / theirs if theirs > 0 else None
    theirs = peer["achieved_rate"]
    out["throughput"] = subject["achieved_rate"] / theirs if theirs > 0 else None
    own_idle, their_idle = subject.get("idle"), peer.get("idle")
    if isinstance(own_idle, dict) and isinstance(their_idle, dict):
        for key, name in (
            ("bytes_per_connection", "bytes_per_connection"),
            ("cpu_percent", "idle_cpu"),
        ):
            mine, other = own_idle.get(key), their_idle.get(key)
            if isinstance(mine, int | float) and isinstance(other, int | float) and other > 0:
                out[name] = mine / other
            else:
                out[name] = None
    return out


def machine_info() -> dict[str, Any]:
    """CPU model, core count, load average, platform: what a reader needs to trust figures."""
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in load],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "hostname": platform.node(),
    }


def versions() -> dict[str, str | None]:
    """Versions of the packages under test and of the harness, and the git commit."""
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        out["git"] = (commit + ("-dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        out["git"] = None
    return out


def build(
    scenarios: dict[str, dict[str, Any]],
    peers: dict[str, dict[str, dict[str, Any]]],
    settings: dict[str, Any],
    *,
    now: dt.datetime,
) -> dict[str, Any]:
    """The whole result document; peers get their ``ratio`` against the matching scenario,
    and ``ratios`` against it and each of its variants."""
    for scenario, by_peer in peers.items():
        for entry in by_peer.values():
            if scenario in scenarios:
                subject = scenarios[scenario]
                entry["ratio"] = peer_ratio(subject, entry)
                systems = {subject.get("system", "perfgate"): subject}
                systems.update(subject.get("variants", {}))
                entry["ratios"] = {name: peer_ratio(e, entry) for name, e in systems.items()}
    return {
        "schema": SCHEMA,
        "created_at": now.isoformat(),
        "machine": machine_info(),
        "versions": versions(),
        "settings": settings,
        "scenarios": scenarios,
        "peers": peers,
    }


def timestamp_name(now: dt.datetime) -> str:
    """``20260102T030405Z``: sortable, filesystem-safe, UTC."""
    return now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def write(result: dict[str, Any], path: Path) -> Path:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def read(path: Path) -> dict[str, Any]:
    """Read and validate a result file; :class:`ResultError` says what is wrong."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ResultError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ResultError(f"{path}: not JSON: {exc}") from exc
    validate(data, str(path))
    return data  # type: ignore[no-any-return]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_latency(obj: Any, where: str, keys: Sequence[str] = PERCENTILE_KEYS) -> None:
    if not isinstance(obj, dict):
        raise ResultError(f"{where}: latency_ms must be an object")
    for key in keys:
        if not _number(obj.get(key)):
            raise ResultError(f"{where}: latency_ms.{key} must be a number")


def validate(data: Any, where: str = "result") -> None:
    """Check what the gate relies on; extra keys are allowed (forward compatible)."""
    if not isinstance(data, dict):
        raise ResultError(f"{where}: top level must be an object")
    for key in ("machine", "versions", "scenarios"):
        if not isinstance(data.get(key), dict):
            raise ResultError(f"{where}: missing or non-object {key!r}")
    if "schema" in data and data["schema"] != SCHEMA:
        raise ResultError(f"{where}: schema {data['schema']!r}, expected {SCHEMA!r}")
    if not data["scenarios"]:
        raise ResultError(f"{where}: no scenarios")
    for name, scenario in data["scenarios"].items():
        at = f"{where}: scenarios.{name}"
        if not isinstance(scenario, dict):
            raise ResultError(f"{at}: must be an object")
        for key in ("offered_rate", "achieved_rate", "errors"):
            if not _number(scenario.get(key)):
                raise ResultError(f"{at}.{key} must be a number")
        _check_latency(scenario.get("latency_ms"), at)
        runs = scenario.get("runs")
        if not isinstance(runs, list) or not runs:
            raise ResultError(f"{at}.runs must be a non-empty list")
        for i, run in enumerate(runs):
            if not isinstance(run, dict) or not _number(run.get("achieved_rate")):
                raise ResultError(f"{at}.runs[{i}].achieved_rate must be a number")
            _check_latency(run.get("latency_ms"), f"{at}.runs[{i}]", ("p50", "p99"))
        variants = scenario.get("variants", {})
        if not isinstance(variants, dict):
            raise ResultError(f"{at}.variants must be an object")
        for variant, entry in variants.items():
            if not isinstance(entry, dict) or not _number(entry.get("achieved_rate")):
                raise ResultError(f"{at}.variants.{variant}.achieved_rate must be a number")
            _check_latency(entry.get("latency_ms"), f"{at}.variants.{variant}")
    if "peers" in data and not isinstance(data["peers"], dict):
        raise ResultError(f"{where}: peers must be an object")


def is_run_valid(run: dict[str, Any]) -> bool:
    """A run is valid unless it says otherwise, or its rates show it missed the schedule."""
    if "valid" in run:
        return bool(run["valid"])
    offered = run.get("offered_rate")
    if not isinstance(offered, int | float):
        return True
    return is_valid(float(run["achieved_rate"]), float(offered))
