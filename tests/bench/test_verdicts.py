"""The gate answers for the code, not the machine: Holm, peer ratios, host state, settings."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from perfgate.bench import comparable, gate, host, power, stats
from tests.bench import synthetic

PEERS = {"hypercorn-trio": 0.8, "uvicorn": 0.7}
QUIET = {"load_per_core": 0.3, "steal_pct": 0.0, "others_cpu_pct": 2.0, "freq_mhz": 2600.0}


# -- which metrics gate ------------------------------------------------------------------------


def test_p90_and_p99_alone_warn_and_never_fail() -> None:
    base = synthetic.result(seed=1, noise=0.01, runs=7)
    cur = copy.deepcopy(base)
    for entry in cur["scenarios"].values():
        for run in entry["runs"]:
            run["latency_ms"]["p90"] *= 3.0
            run["latency_ms"]["p99"] *= 3.0
    report = gate.evaluate(base, cur)
    assert report.exit_code == gate.EXIT_PASS
    warned = {
        (c.scenario, c.metric)
        for c, v in zip(report.comparisons, report.verdicts, strict=True)
        if v is stats.Verdict.WARN
    }
    assert warned == {(s, m) for s in synthetic.SCENARIOS for m in ("p90", "p99")}


def test_one_slower_scenario_fails_however_many_others_are_compared() -> None:
    # no correction over scenarios: the 10 % margin keeps unchanged ones from failing
    base = synthetic.result(seed=1, noise=0.02, runs=7)
    cur = synthetic.result(seed=2, noise=0.02, runs=7)
    for run in cur["scenarios"]["jobs"]["runs"]:
        run["latency_ms"]["p50"] *= 1.3
    report = gate.evaluate(base, cur)
    assert report.exit_code == gate.EXIT_REGRESSION
    failed = [
        c
        for c, v in zip(report.comparisons, report.verdicts, strict=True)
        if v is stats.Verdict.FAIL
    ]
    assert [(c.scenario, c.metric) for c in failed] == [("jobs", "p50")]


# -- peers: ratios survive a busy host -------------------------------------------------------


def test_a_busy_host_fails_absolute_times_but_not_peer_ratios() -> None:
    base = synthetic.result(seed=1, peers=PEERS)
    busy = synthetic.result(seed=2, peers=PEERS, machine_scale=2.0)
    assert gate.evaluate(base, busy).exit_code == gate.EXIT_PASS
    no_peers = {**busy, "peers": {}}
    assert gate.evaluate(base, no_peers).exit_code == gate.EXIT_REGRESSION


def test_a_code_slowdown_is_caught_on_a_busy_host_and_both_figures_are_shown() -> None:
    base = synthetic.result(seed=1, peers=PEERS)
    cur = synthetic.result(seed=2, peers=PEERS, machine_scale=1.5, latency_scale=1.3)
    report = gate.evaluate(base, cur)
    assert report.exit_code == gate.EXIT_REGRESSION
    assert {c.basis for c in report.comparisons} == {"peers"}
    line = next(ln for ln in report.lines() if ln.startswith("FAIL  http       p50"))
    assert "vs peers" in line
    assert "absolute" in line
    assert "vs peers +" in report.lines()[-1]


def test_peers_measured_in_only_one_file_fall_back_to_absolute_times() -> None:
    base = synthetic.result(seed=1)
    cur = synthetic.result(seed=2, peers=PEERS)
    report = gate.evaluate(base, cur)
    assert {c.basis for c in report.comparisons} == {"absolute"}


def test_peers_are_gated_on_the_ones_both_files_share() -> None:
    base = synthetic.result(seed=1, peers={"uvicorn": 0.7})
    cur = synthetic.result(seed=2, peers=PEERS, latency_scale=1.5)
    report = gate.evaluate(base, cur)
    assert {c.basis for c in report.comparisons} == {"peers"}
    assert report.exit_code == gate.EXIT_REGRESSION


# -- host state ------------------------------------------------------------------------------


def test_a_regression_on_a_busier_host_is_inconclusive_with_the_reason() -> None:
    busy = {**QUIET, "others_cpu_pct": 50.0}
    base = synthetic.result(seed=1, host=QUIET)
    cur = synthetic.result(seed=2, latency_scale=2.0, host=busy)
    report = gate.evaluate(base, cur)
    assert report.exit_code == gate.EXIT_INCONCLUSIVE
    why = [ln for ln in report.lines() if "host was busier" in ln]
    assert len(why) == len(synthetic.SCENARIOS)
    assert "other processes used 50 % of the CPU vs 2 %" in why[0]


def test_a_regression_on_a_comparable_or_quieter_host_stands() -> None:
    base = synthetic.result(seed=1, host={**QUIET, "others_cpu_pct": 40.0})
    for state in (QUIET, {**QUIET, "others_cpu_pct": 50.0}):
        cur = synthetic.result(seed=2, latency_scale=2.0, host=state)
        assert gate.evaluate(base, cur).exit_code == gate.EXIT_REGRESSION


def test_a_busier_host_does_not_turn_a_pass_into_inconclusive() -> None:
    base = synthetic.result(seed=1, host=QUIET)
    cur = synthetic.result(seed=2, host={**QUIET, "steal_pct": 30.0})
    assert gate.evaluate(base, cur).exit_code == gate.EXIT_PASS


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"others_cpu_pct": 2.0 + host.MAX_OTHERS_CPU_PCT_INCREASE + 1}, "other processes"),
        ({"steal_pct": host.MAX_STEAL_PCT_INCREASE + 1}, "CPU steal"),
        ({"load_per_core": 0.3 + host.MAX_LOAD_PER_CORE_INCREASE + 0.1}, "load per core"),
        ({"freq_mhz": 2600.0 * host.MIN_FREQ_FRACTION - 1}, "CPU clock"),
    ],
)
def test_each_host_measure_counts(change: dict[str, float], phrase: str) -> None:
    assert phrase in (host.host_difference(QUIET, {**QUIET, **change}) or "")


@pytest.mark.parametrize(
    "change",
    [
        {"others_cpu_pct": 2.0 + host.MAX_OTHERS_CPU_PCT_INCREASE - 1},
        {"steal_pct": host.MAX_STEAL_PCT_INCREASE - 1},
        {"freq_mhz": 2600.0 * host.MIN_FREQ_FRACTION + 1},
        {"freq_mhz": None},
        {"others_cpu_pct": 0.0, "load_per_core": 0.0},
    ],
)
def test_small_or_unknown_host_differences_do_not_count(change: dict[str, Any]) -> None:
    assert host.host_difference(QUIET, {**QUIET, **change}) is None


def test_state_between_two_samples() -> None:
    before = host.HostSample(100.0, 60.0, 1.0, 10.0, 1.0, 2, 2000.0)
    # 10 CPU-seconds passed: 2 idle, 1 steal, 7 busy of which 3 ours
    after = host.HostSample(110.0, 62.0, 2.0, 13.0, 3.0, 2, None)
    assert host.state_between(before, after) == {
        "load_per_core": 1.5,
        "steal_pct": 10.0,
        "others_cpu_pct": 40.0,
        "freq_mhz": 2000.0,
    }


def test_the_median_run_is_the_host_state_of_a_scenario() -> None:
    states = [{**QUIET, "others_cpu_pct": v} for v in (1.0, 90.0, 3.0)]
    assert host.summarise(states)["others_cpu_pct"] == 3.0


# -- settings ----------------------------------------------------------------------------------


def test_different_settings_are_refused_in_one_line() -> None:
    base = synthetic.result(seed=1)
    cur = synthetic.result(seed=2, latency_scale=2.0)
    cur["settings"]["scenarios"]["http"]["duration_s"] = 1.0
    report = gate.evaluate(base, cur)
    assert report.exit_code == gate.EXIT_INCONCLUSIVE
    assert report.lines() == [
        "gate: INCONCLUSIVE: not comparable: http.duration_s 2.0 in the baseline, 1.0 now"
    ]


@pytest.mark.parametrize(
    ("path", "value", "phrase"),
    [
        (("settings", "warmup_s"), 0.0, "warmup_s 1.0 in the baseline, 0.0 now"),
        (("settings", "server"), {"pool_max_workers": 8}, "server"),
        (("settings", "scenarios", "jobs", "connections"), 4, "jobs.connections 8"),
        (("machine", "python"), "3.12.1", "Python 3.11 in the baseline, 3.12 now"),
    ],
)
def test_what_makes_results_incomparable(path: tuple[str, ...], value: Any, phrase: str) -> None:
    base = synthetic.result(seed=1)
    base["settings"]["server"] = {"pool_max_workers": 4}
    cur = copy.deepcopy(base)
    target = cur
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    refusal = comparable.settings_difference(
        base, cur["settings"], cur["machine"]["python"], ["http", "jobs"]
    )
    assert refusal is not None
    assert phrase in refusal


def test_run_count_python_patch_and_dependency_versions_do_not_refuse() -> None:
    base = synthetic.result(seed=1, runs=5)
    cur = synthetic.result(seed=2, runs=7)
    cur["machine"]["python"] = "3.11.9"
    cur["versions"]["trio"] = "0.36.0"
    report = gate.evaluate(base, cur)
    assert report.exit_code == gate.EXIT_PASS
    assert any("trio 0.35.0 -> 0.36.0" in ln for ln in report.lines())


def test_old_results_without_settings_are_compared_with_a_note() -> None:
    base = synthetic.result(seed=1)
    del base["settings"]
    report = gate.evaluate(base, synthetic.result(seed=2))
    assert report.exit_code == gate.EXIT_PASS
    assert "NOTE the baseline records no settings: they were not compared" in report.lines()


# -- the power check ---------------------------------------------------------------------------


def test_power_check_on_quiet_runs_catches_every_regression_and_no_a_a() -> None:
    doc = synthetic.result(seed=1, runs=14, noise=0.03, peers=PEERS)
    report = power.check(doc, trials=10, rng=random.Random(0))
    assert report.runs_per_side == 7
    assert report.catch_rate == 1.0
    assert report.false_alarm_rate == 0.0


def test_power_check_on_noisy_runs_catches_less() -> None:
    quiet = synthetic.result(seed=1, runs=14, noise=0.03)
    noisy = synthetic.result(seed=1, runs=14, noise=0.4)
    rates = [power.check(doc, trials=10, rng=random.Random(0)).catch_rate for doc in (quiet, noisy)]
    assert rates[1] < rates[0]


def test_power_check_needs_enough_runs_to_split() -> None:
    with pytest.raises(ValueError, match="runs per scenario"):
        power.check(synthetic.result(seed=1, runs=5), trials=1, rng=random.Random(0))


def test_a_half_keeps_peer_runs_paired_and_scales_perfgate_only() -> None:
    doc = synthetic.result(seed=1, runs=6, peers=PEERS)
    half = power.half(doc, [4, 1], 1.3)
    assert half["scenarios"]["http"]["runs"][0]["latency_ms"]["p50"] == pytest.approx(
        doc["scenarios"]["http"]["runs"][4]["latency_ms"]["p50"] * 1.3
    )
    assert half["peers"]["http"]["uvicorn"]["runs"][1] == doc["peers"]["http"]["uvicorn"]["runs"][1]
