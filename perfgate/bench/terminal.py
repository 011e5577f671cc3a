"""The terminal face of ``perfgate bench`` (rich): a live progress bar and the final table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from perfgate.bench.report import table_rows
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
        table.add_column(head, justify="left" if head in ("scenario", "system") else "right")
    for row in table_rows(result):
        ratio = row["ratio"] or {}

        def f(v: Any, d: int = 2) -> str:
            return "-" if v is None else f"{v:.{d}f}" if isinstance(v, float) else str(v)

        lost = "-" if row["lost"] is None else f"{row['lost']}/{row['duplicated']}"
        table.add_row(
            row["scenario"],
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
        "x = perfgate/peer: latency above 1 is slower than the peer; throughput below 1 is less."
    )


def _mode_note(result: dict[str, Any]) -> str:
    if result.get("settings", {}).get("mode") == "closed-loop":
        return "CLOSED LOOP (from actual send time; stalls lower the load instead)"
    return "open loop (from intended send time)"
