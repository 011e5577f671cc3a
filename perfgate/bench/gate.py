"""The gate: is CURRENT a regression against BASELINE? (reads only the two result files)

Per scenario present in the baseline, three metrics: p50 and p99 latency (higher is worse)
and throughput (achieved rate, lower is worse). Each is the ratio of medians over *runs*,
current/baseline, with a bootstrap interval; the fail (> 30 % worse) and warn (> 15 %)
hypotheses are Holm-corrected over every metric of every scenario.

Exit codes: 0 pass (warnings allowed), 1 regression, 2 inconclusive or invalid input (an
unreadable file, a schema mismatch, a missing scenario, an invalid run, different offered
load, too few runs, more than 1 % errors). A regression measured on valid scenarios wins over another scenario
being inconclusive: it is a definite finding, and hiding it behind exit 2 would lose it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import attrs

from perfgate.bench import stats
from perfgate.bench.results import is_run_valid

EXIT_PASS, EXIT_REGRESSION, EXIT_INCONCLUSIVE = 0, 1, 2

#: (metric, higher_is_worse)
GATED_METRICS: tuple[tuple[str, bool], ...] = (("p50", True), ("p99", True), ("throughput", False))
#: Offered rates further apart than this make two files incomparable.
OFFERED_TOLERANCE = 0.01
#: More errors than this fraction of requests: fast failures would pass for fast answers.
MAX_ERROR_FRACTION = 0.01


@attrs.frozen
class GateReport:
    exit_code: int
    comparisons: list[stats.Comparison]
    verdicts: list[stats.Verdict]
    problems: list[str]

    def lines(self) -> list[str]:
        """Human-readable report, one finding per line; the last line is the verdict."""
        out: list[str] = []
        for c, v in zip(self.comparisons, self.verdicts, strict=True):
            unit = "/s" if c.metric == "throughput" else " ms"
            out.append(
                f"{v.value.upper():5} {c.scenario:10} {c.metric:10} "
                f"{c.baseline_median:10.3f}{unit} -> {c.current_median:10.3f}{unit} "
                f"({c.change_pct:+6.1f} %, ratio {c.ratio:.3f}, 95 % CI {c.ci_low:.3f}-{c.ci_high:.3f})"
            )
        out.extend(f"INCONCLUSIVE {p}" for p in self.problems)
        moved = [
            f"{c.scenario} {c.metric} {c.change_pct:+.1f} %"
            for c, v in zip(self.comparisons, self.verdicts, strict=True)
            if v in (stats.Verdict.FAIL, stats.Verdict.WARN)
        ]
        word = {EXIT_PASS: "PASS", EXIT_REGRESSION: "REGRESSION", EXIT_INCONCLUSIVE: "INCONCLUSIVE"}
        summary = f"gate: {word[self.exit_code]}"
        if moved:
            summary += " (moved: " + ", ".join(moved) + ")"
        out.append(summary)
        return out


def _metric_values(scenario: dict[str, Any], metric: str) -> list[float]:
    runs = scenario["runs"]
    if metric == "throughput":
        return [float(r["achieved_rate"]) for r in runs]
    return [float(r["latency_ms"][metric]) for r in runs]


def measurement_problems(name: str, entry: dict[str, Any], label: str = "current") -> list[str]:
    """What makes one scenario's measurement unusable: invalid runs, too many errors."""
    problems = []
    invalid = [i for i, run in enumerate(entry["runs"]) if not is_run_valid(run)]
    if entry.get("valid") is False or invalid:
        problems.append(
            f"{name}: {label} has invalid runs {invalid} (achieved < 99 % of offered rate)"
        )
    requests = entry.get("requests")
    if isinstance(requests, int) and requests > 0:
        fraction = float(entry["errors"]) / requests
        if fraction > MAX_ERROR_FRACTION:
            problems.append(f"{name}: {label} has {fraction:.1%} errors")
    return problems


def result_problems(doc: dict[str, Any]) -> list[str]:
    """Problems of one result document on its own (what ``make bench-baseline`` refuses)."""
    problems = [f"{name}: skipped: {why}" for name, why in doc.get("skipped", {}).items()]
    for name, entry in doc["scenarios"].items():
        problems.extend(measurement_problems(name, entry))
    return problems


def _scenario_problems(name: str, base: dict[str, Any], cur: dict[str, Any] | None) -> list[str]:
    if cur is None:
        return [f"{name}: in the baseline but not measured in the current result"]
    problems = []
    for label, entry in (("baseline", base), ("current", cur)):
        problems.extend(measurement_problems(name, entry, label))
        if len(entry["runs"]) < stats.MIN_RUNS:
            problems.append(
                f"{name}: {label} has {len(entry['runs'])} runs, need >= {stats.MIN_RUNS}"
            )
    if base.get("mode", "open-loop") != cur.get("mode", "open-loop"):
        problems.append(f"{name}: load mode differs ({base.get('mode')} vs {cur.get('mode')})")
    b_rate, c_rate = float(base["offered_rate"]), float(cur["offered_rate"])
    if b_rate > 0 and abs(c_rate - b_rate) / b_rate > OFFERED_TOLERANCE:
        problems.append(f"{name}: offered rate differs ({b_rate:g}/s vs {c_rate:g}/s)")
    return problems


def evaluate(
    baseline: dict[str, Any],
    current: dict[str, Any],
    *,
    rng: random.Random | None = None,
    resamples: int = stats.RESAMPLES,
    scenarios: Sequence[str] | None = None,
) -> GateReport:
    """Compare two validated result documents (pure apart from the RNG; seeded by default)."""
    rng = rng if rng is not None else random.Random(0)
    problems: list[str] = []
    comparisons: list[stats.Comparison] = []
    names = list(scenarios) if scenarios is not None else list(baseline["scenarios"])
    for name in names:
        base = baseline["scenarios"].get(name)
        if base is None:
            problems.append(f"{name}: not in the baseline")
            continue
        cur = current["scenarios"].get(name)
        found = _scenario_problems(name, base, cur)
        if found or cur is None:
            problems.extend(found)
            continue
        for metric, higher_is_worse in GATED_METRICS:
            try:
                comparisons.append(
                    stats.compare(
                        name,
                        metric,
                        _metric_values(base, metric),
                        _metric_values(cur, metric),
                        higher_is_worse=higher_is_worse,
                        rng=rng,
                        resamples=resamples,
                    )
                )
            except ValueError as exc:
                problems.append(str(exc))
    verdicts = stats.verdicts(comparisons)
    if stats.Verdict.FAIL in verdicts:
        code = EXIT_REGRESSION
    elif problems or not comparisons:
        code = EXIT_INCONCLUSIVE
        if not comparisons and not problems:
            problems.append("nothing to compare")
    else:
        code = EXIT_PASS
    return GateReport(exit_code=code, comparisons=comparisons, verdicts=verdicts, problems=problems)
