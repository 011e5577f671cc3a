"""The gate: is CURRENT a regression against BASELINE? (reads only the two result files)

Per scenario present in the baseline, four metrics, one value per run: p50, p90 and p99
latency (higher is worse) and throughput (achieved rate, lower is worse). Each is compared
run against run by :func:`perfgate.bench.stats.compare`: is the current worse by more than
``stats.THRESHOLD``, by an exact rank test (:func:`perfgate.bench.stats.verdicts`).

Which metrics gate (:func:`is_gated`): p50. It moves with the code and rests on hundreds of
requests per run, so a run's value is steady. p90 and p99 rest on the slowest tenth and
hundredth of a run's requests (4 of 400 for p99 at 200/s for 2 s): on a shared machine their
run-to-run spread is 2 to 5 times p50's, so over 7 runs they would catch a 30 % slowdown
mostly by luck and fail unchanged builds on their outliers; they are reported, and warn when
confirmed. The throughput of an open-loop run is the offered rate whenever the run is valid
(an invalid run already makes the answer inconclusive), so it says nothing and is reported
only; in a closed-loop run it is the measurement, and gates.

What is compared answers for the code, not the machine:

- When both files carry peers measured in the same run (interleaved with perfgate), a metric
  is gated on the per-run ratio perfgate/peers (the geometric mean over the peers both files
  share): a busy host slows perfgate and its peers alike, so the ratio survives it where
  absolute times do not. Absolute times are still computed and shown beside the ratio.
- Results measured with different settings are refused (:mod:`perfgate.bench.comparable`).
- A regression found while the host was materially busier than for the baseline
  (:func:`perfgate.bench.host.host_difference`) is inconclusive, not a regression.

Exit codes: 0 pass (warnings allowed), 1 regression, 2 inconclusive or invalid input (an
unreadable file, a schema mismatch, different settings, a missing scenario, an invalid run,
different offered load, too few runs, more than 1 % errors, a busier host). A regression
measured on valid scenarios wins over another scenario being inconclusive: it is a definite
finding, and hiding it behind exit 2 would lose it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs

from perfgate.bench import comparable, host, stats
from perfgate.bench.results import is_run_valid

EXIT_PASS, EXIT_REGRESSION, EXIT_INCONCLUSIVE = 0, 1, 2

#: (metric, higher_is_worse), in report order
METRICS: tuple[tuple[str, bool], ...] = (
    ("p50", True),
    ("p90", True),
    ("p99", True),
    ("throughput", False),
)
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
    #: per comparison gated on peers: the same metric in absolute terms (shown, not gated)
    absolute: list[stats.Comparison | None] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)
    #: why the two results cannot be compared at all (then nothing else is reported)
    refusal: str | None = None

    def lines(self) -> list[str]:
        """Human-readable report, one finding per line; the last line is the verdict."""
        if self.refusal is not None:
            return [f"gate: INCONCLUSIVE: not comparable: {self.refusal}"]
        out: list[str] = []
        absolute = self.absolute or [None] * len(self.comparisons)
        for c, v, a in zip(self.comparisons, self.verdicts, absolute, strict=True):
            unit = "/s" if c.metric == "throughput" else " ms"
            if c.basis == "peers":
                line = (
                    f"{v.value.upper():5} {c.scenario:10} {c.metric:10} vs peers "
                    f"{c.baseline_median:.3f} -> {c.current_median:.3f} "
                    f"({c.change_pct:+6.1f} % over run pairs, 95 % CI {c.ci_low:.3f}-{c.ci_high:.3f})"
                )
                if a is not None:
                    line += (
                        f"; absolute {a.baseline_median:.3f}{unit} -> {a.current_median:.3f}{unit}"
                        f" ({a.change_pct:+.1f} %)"
                    )
            else:
                line = (
                    f"{v.value.upper():5} {c.scenario:10} {c.metric:10} "
                    f"{c.baseline_median:10.3f}{unit} -> {c.current_median:10.3f}{unit} "
                    f"({c.change_pct:+6.1f} % over run pairs, "
                    f"95 % CI {c.ci_low:.3f}-{c.ci_high:.3f})"
                )
            if not c.gated:
                line += " (not gated)"
            out.append(line)
        out.extend(f"NOTE {n}" for n in self.notes)
        out.extend(f"INCONCLUSIVE {p}" for p in self.problems)
        moved = [
            f"{c.scenario} {c.metric}{' vs peers' if c.basis == 'peers' else ''} "
            f"{c.change_pct:+.1f} %"
            for c, v in zip(self.comparisons, self.verdicts, strict=True)
            if v in (stats.Verdict.FAIL, stats.Verdict.WARN)
        ]
        word = {EXIT_PASS: "PASS", EXIT_REGRESSION: "REGRESSION", EXIT_INCONCLUSIVE: "INCONCLUSIVE"}
        summary = f"gate: {word[self.exit_code]}"
        if moved:
            summary += " (moved: " + ", ".join(moved) + ")"
        out.append(summary)
        return out


def is_gated(metric: str, mode: str) -> bool:
    """Whether a confirmed move of ``metric`` fails the gate (else it only warns)."""
    return metric == "p50" or (metric == "throughput" and mode == "closed-loop")


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
    # closed loop: the offered rate is what was achieved, a measurement, not a setting
    closed = cur.get("mode") == "closed-loop"
    b_rate, c_rate = float(base["offered_rate"]), float(cur["offered_rate"])
    if not closed and b_rate > 0 and abs(c_rate - b_rate) / b_rate > OFFERED_TOLERANCE:
        problems.append(f"{name}: offered rate differs ({b_rate:g}/s vs {c_rate:g}/s)")
    return problems


def _peer_names(
    baseline: dict[str, Any],
    current: dict[str, Any],
    name: str,
    base: dict[str, Any],
    cur: dict[str, Any],
) -> list[str]:
    """Peers measured beside perfgate in both files, run for run, with usable measurements."""
    b_peers = baseline.get("peers", {}).get(name, {})
    c_peers = current.get("peers", {}).get(name, {})
    usable = []
    for peer in sorted(set(b_peers) & set(c_peers)):
        ok = True
        for entry, subject in ((b_peers[peer], base), (c_peers[peer], cur)):
            runs = entry.get("runs")
            ok = ok and isinstance(runs, list) and len(runs) == len(subject["runs"])
            ok = ok and not measurement_problems(name, entry)
        if ok:
            usable.append(peer)
    return usable


def _ratio_values(
    doc: dict[str, Any], name: str, entry: dict[str, Any], peers: Sequence[str], metric: str
) -> list[float]:
    """Per run: perfgate's value over the geometric mean of the peers' values in that run."""
    own = _metric_values(entry, metric)
    theirs = [_metric_values(doc["peers"][name][peer], metric) for peer in peers]
    out = []
    for i, value in enumerate(own):
        refs = [series[i] for series in theirs]
        if any(r <= 0 for r in refs):
            raise ValueError(f"{name}.{metric}: a peer measured 0")
        out.append(value / math.prod(refs) ** (1.0 / len(refs)))
    return out


def evaluate(
    baseline: dict[str, Any],
    current: dict[str, Any],
    *,
    scenarios: Sequence[str] | None = None,
) -> GateReport:
    """Compare two validated result documents (pure)."""
    names = list(scenarios) if scenarios is not None else list(baseline["scenarios"])
    refusal = comparable.settings_difference(
        baseline, current.get("settings"), current.get("machine", {}).get("python"), names
    )
    if refusal is not None:
        return GateReport(EXIT_INCONCLUSIVE, [], [], [], refusal=refusal)
    problems: list[str] = []
    notes = comparable.notes(baseline, current)
    comparisons: list[stats.Comparison] = []
    absolute: list[stats.Comparison | None] = []
    busier: dict[str, str] = {}
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
        why = host.host_difference(base.get("host", {}), cur.get("host", {}))
        if why is not None:
            busier[name] = why
        peers = _peer_names(baseline, current, name, base, cur)
        gated_mode = str(cur.get("mode", "open-loop"))
        for metric, higher_is_worse in METRICS:
            gated = is_gated(metric, gated_mode)
            try:
                plain = stats.compare(
                    name,
                    metric,
                    _metric_values(base, metric),
                    _metric_values(cur, metric),
                    higher_is_worse=higher_is_worse,
                    gated=gated,
                )
                if not peers:
                    comparisons.append(plain)
                    absolute.append(None)
                    continue
                comparisons.append(
                    stats.compare(
                        name,
                        metric,
                        _ratio_values(baseline, name, base, peers, metric),
                        _ratio_values(current, name, cur, peers, metric),
                        higher_is_worse=higher_is_worse,
                        basis="peers",
                        gated=gated,
                    )
                )
                absolute.append(plain)
            except ValueError as exc:
                problems.append(str(exc))
    verdicts = stats.verdicts(comparisons)
    failed = {
        c.scenario for c, v in zip(comparisons, verdicts, strict=True) if v is stats.Verdict.FAIL
    }
    for name in sorted(failed & set(busier)):
        problems.append(
            f"{name}: slower, but the host was busier than for the baseline ({busier[name]})"
        )
    if failed - set(busier):
        code = EXIT_REGRESSION
    elif problems or not comparisons:
        code = EXIT_INCONCLUSIVE
        if not comparisons and not problems:
            problems.append("nothing to compare")
    else:
        code = EXIT_PASS
    return GateReport(
        exit_code=code,
        comparisons=comparisons,
        verdicts=verdicts,
        problems=problems,
        absolute=absolute,
        notes=notes,
    )
