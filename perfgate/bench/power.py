"""The gate's power and false-alarm rate, estimated from recorded runs (pure; seeded RNG).

From result files holding many runs per scenario (``perfgate bench --runs 14 --peers``, on
the machine the gate will run on), each trial draws two disjoint halves of the runs at
random, keeping every run paired with the peers' run of the same round:

- A/A: the gate compares one half with the other. Same code, same machine: any exit 1 is a
  false alarm.
- Regression: the same pair, with perfgate's latencies in the second half multiplied by
  ``regression`` (1.30: every percentile 30 % slower; its peers untouched). Exit 1 is a catch.

The figures carry the machine's real run-to-run noise (interference, drift, outliers) that a
synthetic model would have to guess; the injected regression is exact by construction.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from typing import Any

import attrs

from perfgate.bench import gate, host, stats
from perfgate.bench.results import is_run_valid

LATENCY_KEYS = ("p50", "p90", "p99", "p999", "max")


@attrs.frozen
class PowerReport:
    trials: int
    runs_per_side: int
    regression: float
    a_a_exit_codes: tuple[int, ...]
    regression_exit_codes: tuple[int, ...]

    @property
    def false_alarm_rate(self) -> float:
        return self.a_a_exit_codes.count(gate.EXIT_REGRESSION) / self.trials

    @property
    def catch_rate(self) -> float:
        return self.regression_exit_codes.count(gate.EXIT_REGRESSION) / self.trials

    def lines(self) -> list[str]:
        def share(codes: tuple[int, ...], code: int) -> str:
            return f"{100.0 * codes.count(code) / self.trials:.1f} %"

        aa, reg = self.a_a_exit_codes, self.regression_exit_codes
        pct = (self.regression - 1.0) * 100.0
        return [
            f"power check: {self.trials} trials, {self.runs_per_side} runs a side",
            f"A/A pairs failed (exit 1): {share(aa, 1)}  (goal <= 1 %; "
            f"inconclusive {share(aa, 2)})",
            f"{pct:.0f} % regression caught (exit 1): {share(reg, 1)}  (goal >= 95 %; "
            f"inconclusive {share(reg, 2)})",
        ]


def merge(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One document holding every run of every file, in file order (same settings assumed:
    the caller checks them with the gate's own rule)."""
    merged = copy.deepcopy(docs[0])
    for doc in docs[1:]:
        for name, entry in merged["scenarios"].items():
            other = doc["scenarios"].get(name)
            if other is None:
                raise ValueError(f"{name}: not in every file")
            entry["runs"].extend(copy.deepcopy(other["runs"]))
            for peer, peer_entry in merged.get("peers", {}).get(name, {}).items():
                their = doc.get("peers", {}).get(name, {}).get(peer)
                if their is None:
                    raise ValueError(f"{name}: peer {peer} not in every file")
                peer_entry["runs"].extend(copy.deepcopy(their["runs"]))
    return merged


def _entry_with(entry: dict[str, Any], indices: Sequence[int], scale: float) -> dict[str, Any]:
    out = {k: v for k, v in entry.items() if k not in ("runs", "histogram")}
    runs = []
    for i in indices:
        run = copy.deepcopy(entry["runs"][i])
        if scale != 1.0:
            for key in ("latency_ms", "uncorrected_latency_ms"):
                if key in run:
                    run[key] = {
                        k: v * scale if k in LATENCY_KEYS else v for k, v in run[key].items()
                    }
        runs.append(run)
    out["runs"] = runs
    out["valid"] = all(is_run_valid(r) for r in runs)
    out["requests"] = sum(int(r.get("requests", 0)) for r in runs)
    out["errors"] = sum(int(r.get("errors", 0)) for r in runs)
    states = [r["host"] for r in runs if isinstance(r.get("host"), dict)]
    if states:
        out["host"] = host.summarise(states)
    return out


def half(doc: dict[str, Any], indices: Sequence[int], scale: float = 1.0) -> dict[str, Any]:
    """The document restricted to runs ``indices`` (peers alike); perfgate's latencies x
    ``scale``."""
    out = {k: v for k, v in doc.items() if k not in ("scenarios", "peers")}
    out["scenarios"] = {n: _entry_with(e, indices, scale) for n, e in doc["scenarios"].items()}
    out["peers"] = {
        n: {p: _entry_with(e, indices, 1.0) for p, e in by_peer.items()}
        for n, by_peer in doc.get("peers", {}).items()
    }
    return out


def check(
    doc: dict[str, Any],
    *,
    trials: int,
    rng: random.Random,
    regression: float = stats.FAIL_RATIO,
) -> PowerReport:
    """Run ``trials`` A/A and regression pairs drawn from ``doc``'s runs (see module doc).

    Raises ``ValueError`` when a scenario has fewer than twice ``stats.MIN_RUNS`` runs.
    """
    total = min(len(e["runs"]) for e in doc["scenarios"].values())
    per_side = total // 2
    if per_side < stats.MIN_RUNS:
        raise ValueError(
            f"need >= {2 * stats.MIN_RUNS} runs per scenario to split in two, have {total}"
        )
    aa: list[int] = []
    reg: list[int] = []
    for _ in range(trials):
        order = rng.sample(range(total), 2 * per_side)
        a, b = order[:per_side], order[per_side:]
        baseline = half(doc, a)
        aa.append(gate.evaluate(baseline, half(doc, b)).exit_code)
        reg.append(gate.evaluate(baseline, half(doc, b, regression)).exit_code)
    return PowerReport(trials, per_side, regression, tuple(aa), tuple(reg))
