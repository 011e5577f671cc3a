"""A self-contained HTML report: latency-percentile plots (PNG, base64-embedded) and a table.

The plots follow HdrHistogram's plotter: the x axis is ``1 / (1 - percentile)`` on a log
scale, so 90 %, 99 %, 99.9 %... are evenly spaced and the tail gets the room it deserves.
perfgate's corrected curve is solid, its uncorrected (service-time) curve dashed, peers
overlaid in their own colours; when the result was gated, the baseline's curves (perfgate's
and its peers') are overlaid dotted, in the colour of the system they belong to. matplotlib runs on the Agg backend (no display needed).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perfgate.bench import histogram as hdr

_TICKS = (0.0, 90.0, 99.0, 99.9, 99.99, 99.999)


def _x(percentile: float) -> float:
    return 1.0 / max(1e-7, 1.0 - percentile / 100.0)


def _curve(encoded: str | None) -> list[tuple[float, float]]:
    if not encoded:
        return []
    return hdr.percentile_curve_ms(hdr.decode(encoded))


def plot_png(
    name: str,
    entries: Sequence[tuple[str, dict[str, Any]]],
    mode: str = "open-loop",
    baseline_entries: Sequence[tuple[str, dict[str, Any]]] = (),
) -> bytes:
    """One scenario's percentile plot; ``entries`` is ``[(label, scenario entry), ...]``,
    the first being the system under test; ``baseline_entries`` the same from the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
    try:
        top = 0.0
        colours: dict[str, Any] = {}
        for i, (label, entry) in enumerate(entries):
            curve = _curve(entry.get("histogram"))
            if curve:
                xs = [_x(p) for p, _ in curve]
                (line,) = ax.plot(
                    xs, [v for _, v in curve], label=f"{label}", linewidth=2.0 if i == 0 else 1.4
                )
                colours[label] = line.get_color()
                top = max(top, max(p for p, _ in curve))
            if i == 0:
                raw = _curve(entry.get("uncorrected_histogram"))
                if raw:
                    ax.plot(
                        [_x(p) for p, _ in raw],
                        [v for _, v in raw],
                        linestyle="--",
                        color="grey",
                        label=f"{label} (uncorrected)",
                        linewidth=1.0,
                    )
        for label, entry in baseline_entries:
            curve = _curve(entry.get("histogram"))
            if curve:
                ax.plot(
                    [_x(p) for p, _ in curve],
                    [v for _, v in curve],
                    linestyle=":",
                    color=colours.get(label),
                    label=f"{label} (baseline)",
                    linewidth=1.6,
                )
                top = max(top, max(p for p, _ in curve))
        ax.set_xscale("log")
        ticks = [t for t in _TICKS if t <= max(top, 99.0)]
        ax.set_xticks([_x(t) for t in ticks])
        ax.set_xticklabels([f"{t:g}%" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency (ms)")
        how = "open loop, from intended send time" if mode == "open-loop" else "CLOSED LOOP"
        ax.set_title(f"{name}: latency by percentile ({how})")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
        buffer = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (scenario, system): the figures the terminal and HTML tables show."""
    rows: list[dict[str, Any]] = []
    for name, entry in result["scenarios"].items():
        rows.append(_row(name, entry.get("system", "perfgate"), entry, None))
        for variant, variant_entry in entry.get("variants", {}).items():
            rows.append(_row(name, variant, variant_entry, None))
        for peer, peer_entry in result.get("peers", {}).get(name, {}).items():
            rows.append(_row(name, peer, peer_entry, peer_entry.get("ratio")))
    return rows


def _row(
    scenario: str, system: str, entry: dict[str, Any], ratio: dict[str, Any] | None
) -> dict[str, Any]:
    lat = entry["latency_ms"]
    return {
        "scenario": scenario,
        "system": system,
        "mode": entry.get("mode", "open-loop"),
        "offered": entry["offered_rate"],
        "achieved": entry["achieved_rate"],
        "valid": entry.get("valid", True),
        "errors": entry["errors"],
        "lost": entry.get("lost"),
        "duplicated": entry.get("duplicated"),
        **{k: lat[k] for k in ("p50", "p90", "p99", "p999", "max")},
        "uncorrected_p99": entry.get("uncorrected_latency_ms", {}).get("p99"),
        "runs": len(entry.get("runs", [])),
        "ratio": ratio,
    }


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "INVALID"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _entries(doc: dict[str, Any], name: str) -> list[tuple[str, dict[str, Any]]]:
    entry = doc["scenarios"].get(name)
    if entry is None:
        return []
    out = [(entry.get("system", "perfgate"), entry), *entry.get("variants", {}).items()]
    return out + list(doc.get("peers", {}).get(name, {}).items())


def ratio_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """perfgate/peer for every perfgate system (subject and variants) against every peer, in
    the scenarios where there is more than the main table shows (variants, idle costs)."""
    rows: list[dict[str, Any]] = []
    for name, by_peer in result.get("peers", {}).items():
        entry = result["scenarios"].get(name, {})
        if not entry.get("variants") and "idle" not in entry:
            continue
        for peer, peer_entry in by_peer.items():
            for system, ratio in peer_entry.get("ratios", {}).items():
                rows.append({"scenario": name, "system": system, "peer": peer, **ratio})
    return rows


def idle_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """``ws-idle``: connections held, KiB of server RSS per connection, server CPU."""
    rows: list[dict[str, Any]] = []
    for name in result["scenarios"]:
        for system, entry in _entries(result, name):
            idle = entry.get("idle")
            if not isinstance(idle, dict):
                continue
            per_connection = idle.get("bytes_per_connection")
            rows.append(
                {
                    "scenario": name,
                    "system": system,
                    "connections": idle.get("connections"),
                    "kib_per_connection": None
                    if per_connection is None
                    else per_connection / 1024.0,
                    "cpu_percent": idle.get("cpu_percent"),
                    "window_s": idle.get("window_s"),
                }
            )
    return rows


def render_html(
    result: dict[str, Any],
    gate_lines: Sequence[str] = (),
    baseline: dict[str, Any] | None = None,
) -> str:
    """The whole report as one HTML string (no external resources); with ``baseline``, its
    percentile curves are overlaid on the result's."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>perfgate bench</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:3px 6px;"
        "text-align:right}th{background:#eee}td.l{text-align:left}.bad{color:#b00;font-weight:bold}"
        "pre{background:#f6f6f6;padding:1em}</style></head><body>",
        f"<h1>perfgate bench — {html.escape(result.get('created_at', ''))}</h1>",
    ]
    machine, versions = result.get("machine", {}), result.get("versions", {})
    parts.append(
        "<p>"
        + html.escape(
            f"{machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores, "
            f"load {machine.get('load_average', '?')}; "
            + ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        )
        + "</p>"
    )
    if gate_lines:
        parts.append("<h2>Gate</h2><pre>" + html.escape("\n".join(gate_lines)) + "</pre>")
    parts.append("<h2>Summary</h2><table><tr>")
    heads = [
        "scenario",
        "system",
        "offered/s",
        "achieved/s",
        "valid",
        "errors",
        "lost",
        "dup",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "uncorr. p99",
        "runs",
        "ratio p50",
        "ratio p99",
        "ratio thr.",
    ]
    parts.append("".join(f"<th>{h}</th>" for h in heads) + "</tr>")
    for row in table_rows(result):
        ratio = row["ratio"] or {}
        cells = [
            row["scenario"],
            row["system"],
            _fmt(row["offered"], 1),
            _fmt(row["achieved"], 1),
            _fmt(row["valid"]),
            _fmt(row["errors"]),
            _fmt(row["lost"]),
            _fmt(row["duplicated"]),
            *(_fmt(row[k]) for k in ("p50", "p90", "p99", "p999", "max", "uncorrected_p99")),
            _fmt(row["runs"]),
            _fmt(ratio.get("p50")),
            _fmt(ratio.get("p99")),
            _fmt(ratio.get("throughput")),
        ]
        klass = ["l", "l"] + [""] * (len(cells) - 2)
        if row["valid"] is False:
            klass[4] = "bad"
        parts.append(
            "<tr>"
            + "".join(
                f"<td class='{k}'>{html.escape(c)}</td>" for k, c in zip(klass, cells, strict=True)
            )
            + "</tr>"
        )
    parts.append(
        "</table><p>ratio = perfgate / peer (latency: above 1 is slower than the peer).</p>"
    )
    parts.extend(_extra_tables_html(result))
    for name, entry in result["scenarios"].items():
        mode = entry.get("mode", "open-loop")
        before = _entries(baseline, name) if baseline is not None else []
        png = base64.b64encode(plot_png(name, _entries(result, name), mode, before)).decode("ascii")
        parts.append(
            f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)} latency percentiles' "
            f"src='data:image/png;base64,{png}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _extra_tables_html(result: dict[str, Any]) -> list[str]:
    parts: list[str] = []
    idle = idle_rows(result)
    if idle:
        parts.append(
            "<h2>Idle connections</h2><table><tr><th>scenario</th><th>system</th>"
            "<th>connections</th><th>KiB/connection</th><th>CPU % of a core</th>"
            "<th>window s</th></tr>"
        )
        for row in idle:
            cells = [row["scenario"], row["system"], _fmt(row["connections"], 0)]
            cells += [_fmt(row["kib_per_connection"], 1), _fmt(row["cpu_percent"])]
            cells += [_fmt(row["window_s"], 1)]
            parts.append(
                "<tr>"
                + "".join(
                    f"<td class='{'l' if i < 2 else ''}'>{html.escape(c)}</td>"
                    for i, c in enumerate(cells)
                )
                + "</tr>"
            )
        parts.append("</table>")
    ratios = ratio_rows(result)
    if ratios:
        parts.append(
            "<h2>perfgate / peer, every way perfgate was measured</h2><table><tr>"
            "<th>scenario</th><th>perfgate as</th><th>peer</th><th>p50</th><th>p99</th>"
            "<th>throughput</th><th>RSS/conn.</th><th>idle CPU</th></tr>"
        )
        for row in ratios:
            cells = [row["scenario"], row["system"], row["peer"]]
            cells += [_fmt(row.get(k)) for k in ("p50", "p99", "throughput")]
            cells += [_fmt(row.get(k)) for k in ("bytes_per_connection", "idle_cpu")]
            parts.append(
                "<tr>"
                + "".join(
                    f"<td class='{'l' if i < 3 else ''}'>{html.escape(c)}</td>"
                    for i, c in enumerate(cells)
                )
                + "</tr>"
            )
        parts.append(
            "</table><p>throughput above 1: perfgate did more; latency, RSS and CPU above 1: "
            "perfgate is slower or costs more.</p>"
        )
    return parts


def write_report(
    result: dict[str, Any],
    path: Path,
    gate_lines: Sequence[str] = (),
    baseline: dict[str, Any] | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result, gate_lines, baseline))
    return path
