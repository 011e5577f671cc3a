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


def comparison(worseness: float, p_worse: float, name: str = "s") -> stats.Comparison:
    return stats.Comparison(
        scenario=name,
        metric="p50",
        higher_is_worse=True,
        baseline_median=1.0,
        current_median=worseness,
        ratio=worseness,
        ci_low=worseness,
        ci_high=worseness,
        p_worse=p_worse,
    )


# -- Holm: verdicts that depend on the correction ------------------------------------------


def test_one_marginal_p_value_among_four_passes_only_because_of_holm() -> None:
    # uncorrected, 0.02 <= 0.05 would FAIL the first metric; Holm makes it 0.08
    family = [comparison(1.5, 0.02), *(comparison(1.0, 0.9) for _ in range(3))]
    assert stats.verdicts(family) == [stats.Verdict.PASS] * 4
    assert stats.verdicts(family[:1]) == [stats.Verdict.FAIL]


def test_holm_steps_down_where_bonferroni_would_not() -> None:
    # Bonferroni (x3) clears only 0.01; Holm's step-down also rejects 0.02 (x2 = 0.04)
    family = [comparison(1.5, 0.01), comparison(1.5, 0.02), comparison(1.5, 0.2)]
    assert stats.verdicts(family) == [stats.Verdict.FAIL, stats.Verdict.FAIL, stats.Verdict.PASS]


def test_a_confirmed_move_short_of_the_fail_point_warns() -> None:
    assert stats.verdicts([comparison(stats.FAIL_POINT_RATIO - 0.01, 0.001)]) == [
        stats.Verdict.WARN
    ]
    assert stats.verdicts([comparison(stats.FAIL_POINT_RATIO, 0.001)]) == [stats.Verdict.FAIL]


def _constant_doc(low_runs: int) -> dict[str, Any]:
    """9 identical runs; http p50 at 15 ms in the current except ``low_runs`` runs at 11 ms.

    The bootstrap median stays at or below the 15 % line (11.5 ms) only when 5 of the 9 draws
    are low runs: P(Binomial(9, k/9) >= 5) = 0.0014 for one low run, 0.030 for two. With
    6 gated metrics Holm multiplies the smallest p-value by 6: 0.009 fails, 0.18 passes.
    """
    doc = synthetic.result(seed=1, noise=0.0, runs=9)
    for i, run in enumerate(doc["scenarios"]["http"]["runs"]):
        run["latency_ms"]["p50"] = 11.0 if i < low_runs else 15.0
    return doc


def test_gate_verdict_that_depends_on_holm() -> None:
    base = synthetic.result(seed=1, noise=0.0, runs=9)
    for run in base["scenarios"]["http"]["runs"]:
        run["latency_ms"]["p50"] = 10.0
    one_low = gate.evaluate(base, _constant_doc(1))
    two_low = gate.evaluate(base, _constant_doc(2))
    assert one_low.exit_code == gate.EXIT_REGRESSION
    assert two_low.exit_code == gate.EXIT_PASS  # p = 0.03 alone would fail without Holm
    p = {c.metric: c.p_worse for c in two_low.comparisons if c.scenario == "http"}
    assert 0.05 / len(two_low.comparisons) < p["p50"] <= 0.05


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
    report = power.check(doc, trials=10, rng=random.Random(0), resamples=500)
    assert report.runs_per_side == 7
    assert report.catch_rate == 1.0
    assert report.false_alarm_rate == 0.0


def test_power_check_on_noisy_runs_catches_less() -> None:
    quiet = synthetic.result(seed=1, runs=14, noise=0.03)
    noisy = synthetic.result(seed=1, runs=14, noise=0.4)
    rates = [
        power.check(doc, trials=10, rng=random.Random(0), resamples=500).catch_rate
        for doc in (quiet, noisy)
    ]
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
