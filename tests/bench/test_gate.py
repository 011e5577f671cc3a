"""``perfgate gate BASELINE CURRENT`` on synthetic result files: exit 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from perfgate.bench import gate
from perfgate.bench.cli import gate_main
from tests.bench import synthetic


def write(path: Path, doc: Any) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    return write(tmp_path / "baseline.json", synthetic.result(seed=1))


def test_a_a_passes(tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = write(tmp_path / "current.json", synthetic.result(seed=2))
    assert gate_main([str(baseline), str(current)]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "gate: PASS"
    # every scenario x metric was compared; only p50 gates an open-loop run
    assert out.count("PASS ") == len(synthetic.SCENARIOS) * len(gate.METRICS)
    assert out.count("(not gated)") == len(synthetic.SCENARIOS) * (len(gate.METRICS) - 1)


def test_identical_files_pass(baseline: Path) -> None:
    assert gate_main([str(baseline), str(baseline)]) == 0


def test_doubled_latency_fails_and_says_what_moved(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = write(tmp_path / "current.json", synthetic.result(seed=2, latency_scale=2.0))
    assert gate_main([str(baseline), str(current)]) == 1
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert last.startswith("gate: REGRESSION (moved: ")
    assert "http p50 +" in last
    assert "jobs p99 +" in last
    assert "FAIL  http       p50" in out


def closed_loop(doc: dict[str, Any]) -> dict[str, Any]:
    for entry in doc["scenarios"].values():
        entry["mode"] = "closed-loop"
    return doc


def test_halved_throughput_fails_a_closed_loop_run_and_warns_on_an_open_loop_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, cur = synthetic.result(seed=1), synthetic.result(seed=2, throughput_scale=0.5)
    b, c = write(tmp_path / "b.json", base), write(tmp_path / "c.json", cur)
    # open loop: the achieved rate is the offered rate of any valid run; it says nothing
    assert gate_main([str(b), str(c)]) == 0
    assert "WARN  http       throughput" in capsys.readouterr().out
    b = write(tmp_path / "b.json", closed_loop(base))
    c = write(tmp_path / "c.json", closed_loop(cur))
    assert gate_main([str(b), str(c)]) == 1


def test_a_confirmed_slowdown_past_the_margin_fails_and_one_within_it_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write(tmp_path / "b.json", synthetic.result(seed=1, noise=0.005, runs=7))
    for scale, code in ((1.05, 0), (1.2, 1)):
        cur = synthetic.result(seed=2, noise=0.005, runs=7, latency_scale=scale)
        assert gate_main([str(base), str(write(tmp_path / "c.json", cur))]) == code
    assert "FAIL  http       p50" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ({"machine": {}, "versions": {}}, "scenarios"),
        (
            {"machine": {}, "versions": {}, "scenarios": {"http": {"offered_rate": 1}}},
            "achieved_rate",
        ),
        ({**synthetic.result(seed=3), "schema": "other/9"}, "schema"),
    ],
)
def test_bad_input_is_exit_2(
    tmp_path: Path, baseline: Path, content: Any, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    current = write(tmp_path / "current.json", content)
    assert gate_main([str(baseline), str(current)]) == 2
    assert message in capsys.readouterr().err


def test_missing_file_is_exit_2(tmp_path: Path, baseline: Path) -> None:
    assert gate_main([str(baseline), str(tmp_path / "nope.json")]) == 2


def test_an_invalid_run_is_inconclusive(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = write(tmp_path / "current.json", synthetic.result(seed=2, invalid_run="jobs"))
    assert gate_main([str(baseline), str(current)]) == 2
    out = capsys.readouterr().out
    assert "jobs: current has invalid runs [0]" in out
    assert out.strip().splitlines()[-1] == "gate: INCONCLUSIVE"


def test_too_few_runs_is_inconclusive(tmp_path: Path, baseline: Path) -> None:
    current = write(tmp_path / "current.json", synthetic.result(seed=2, runs=2))
    assert gate_main([str(baseline), str(current)]) == 2


def test_a_scenario_missing_from_current_is_inconclusive(tmp_path: Path, baseline: Path) -> None:
    doc = synthetic.result(seed=2)
    del doc["scenarios"]["jobs"]
    assert gate_main([str(baseline), str(write(tmp_path / "c.json", doc))]) == 2


def test_different_offered_load_is_inconclusive(tmp_path: Path, baseline: Path) -> None:
    doc = synthetic.result(seed=2)
    doc["scenarios"]["http"]["offered_rate"] = 400.0
    assert gate_main([str(baseline), str(write(tmp_path / "c.json", doc))]) == 2


def test_a_regression_elsewhere_wins_over_an_inconclusive_scenario() -> None:
    base = synthetic.result(seed=1)
    cur = synthetic.result(seed=2, latency_scale=2.0, invalid_run="jobs")
    report = gate.evaluate(base, cur)
    assert report.exit_code == 1
    assert any("jobs" in p for p in report.problems)


def test_errors_above_one_percent_are_inconclusive(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = synthetic.result(seed=2)
    doc["scenarios"]["jobs"].update(requests=500, errors=25)
    assert gate_main([str(baseline), str(write(tmp_path / "c.json", doc))]) == 2
    assert "jobs: current has 5.0% errors" in capsys.readouterr().out
