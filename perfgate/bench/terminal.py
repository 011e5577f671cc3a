"""The terminal face of ``perfgate bench`` (rich): a live progress bar and the final table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from perfgate.bench.report import idle_rows, ratio_rows, table_rows
from perfgate.bench.suite import SuiteOptions

T = TypeVar("T")


def with_progress(options: SuiteOptions, body: Callable[[Callable[[str, float], None]], T]) -> T:
    """Run ``body(progress)`` under a progress bar measured in seconds of load.

    The suite reports several times a second while a run is going, so the bar moves.
    """
    console = Console(stderr=True)
    total = options.planned_seconds()
    with Progress(
        TextColumn("[bold]{task.description:<40}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("starting", total=total)

        def on_progress(description: str, done_s: float) -> None:
            progress.update(task, description=description, completed=min(total, done_s))

        result = body(on_progress)
        progress.update(task, completed=total)
    return result


def print_table(result: dict[str, Any], console: Console | None = None) -> None:
    """The summary table: one row per scenario and system, peers with their ratios."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=180)  # CI logs: no wrapping into unreadable columns
    table = Table(title=f"perfgate bench: latency in ms, {_mode_note(result)}")
    for head in (
        "scenario",
        "system",
        "offered/s",
        "achieved/s",
        "valid",
        "errors",
        "lost/dup",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "p99 uncorr.",
        "xp50",
        "xp99",
        "xthr",
    ):
        table.add_column(
            head,
            justify="left" if head in ("scenario", "system") else "right",
            no_wrap=head in ("scenario", "system"),
        )
    for row in table_rows(result):
        ratio = row["ratio"] or {}

        def f(v: Any, d: int = 2) -> str:
            return "-" if v is None else f"{v:.{d}f}" if isinstance(v, float) else str(v)

        lost = "-" if row["lost"] is None else f"{row['lost']}/{row['duplicated']}"
        closed = row["mode"] == "closed-loop"
        table.add_row(
            row["scenario"] + ("*" if closed else ""),
            row["system"],
            f(row["offered"], 1),
            f(row["achieved"], 1),
            "yes" if row["valid"] else "[red]INVALID[/red]",
            f"[red]{row['errors']}[/red]" if row["errors"] else "0",
            lost,
            *(f(row[k]) for k in ("p50", "p90", "p99", "p999", "max", "uncorrected_p99")),
            f(ratio.get("p50")),
            f(ratio.get("p99")),
            f(ratio.get("throughput")),
        )
    console.print(table)
    console.print(
        "x = perfgate/peer: latency above 1 is slower than the peer; throughput below 1 is less. "
        "* closed loop: each caller sends when its last answer came; offered = achieved = "
        "completed per second."
    )
    _print_extra_tables(result, console)


def _f(v: Any, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _print_extra_tables(result: dict[str, Any], console: Console) -> None:
    idle = idle_rows(result)
    if idle:
        table = Table(title="idle connections: server RSS and CPU (outside the server)")
        for head in (
            "scenario",
            "system",
            "connections",
            "KiB/conn",
            "CPU % of a core",
            "window s",
        ):
            table.add_column(head, justify="left" if head in ("scenario", "system") else "right")
        for row in idle:
            table.add_row(
                row["scenario"],
                row["system"],
                _f(row["connections"], 0),
                _f(row["kib_per_connection"], 1),
                _f(row["cpu_percent"]),
                _f(row["window_s"], 1),
            )
        console.print(table)
    ratios = ratio_rows(result)
    if ratios:
        table = Table(title="perfgate/peer, every way perfgate was measured")
        for head in ("scenario", "perfgate as", "peer", "xp50", "xp99", "xthr", "xRSS", "xCPU"):
            table.add_column(head, justify="left" if head[0] != "x" else "right")
        for row in ratios:
            table.add_row(
                row["scenario"],
                row["system"],
                row["peer"],
                *(
                    _f(row.get(k))
                    for k in ("p50", "p99", "throughput", "bytes_per_connection", "idle_cpu")
                ),
            )
        console.print(table)


def _mode_note(result: dict[str, Any]) -> str:
    if result.get("settings", {}).get("mode") == "closed-loop":
        return "CLOSED LOOP (from actual send time; stalls lower the load instead)"
    return "open loop (from intended send time)"
