"""``perfgate bench`` end to end against peer servers (real subprocesses, real sockets).

Short runs; nothing here asserts on how fast anything is, only that the harness records what
the contract says it records.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from perfgate.bench import results
from perfgate.bench.cli import bench_main, gate_main


def argv(words: str) -> list[str]:
    return words.split()


def only_result(out: Path) -> dict[str, Any]:
    [path] = sorted(out.glob("*.json"))
    assert path.with_suffix(".html").exists()
    return results.read(path)  # validates the schema


def test_http_against_hypercorn_with_uvicorn_as_peer(tmp_path: Path) -> None:
    out = tmp_path / "results"
    code = bench_main(
        [
            *argv(
                "http --subject hypercorn-trio --peers --runs 3 --duration 0.6 --warmup 0 --rate 100 --connections 2 --processes 1 --out"
            ),
            str(out),
            "--write-baseline",
            str(tmp_path / "baseline.json"),
        ]
    )
    doc = only_result(out)
    entry = doc["scenarios"]["http"]
    assert entry["system"] == "hypercorn-trio"
    assert entry["offered_rate"] == 100.0
    assert entry["achieved_rate"] > 0
    assert code == (0 if entry["valid"] else 2)
    assert entry["errors"] == 0
    assert len(entry["runs"]) == 3
    for run in entry["runs"]:
        assert run["mode"] == "open-loop"
        assert run["requests"] == 60
        assert {"achieved_rate", "offered_rate", "valid", "send_lag_ms"} <= set(run)
        # open-loop latency includes the generator's lag, so it is never below service time
        assert run["latency_ms"]["max"] >= run["uncorrected_latency_ms"]["max"] * 0.999
    assert entry["histogram"] and entry["uncorrected_histogram"]
    assert set(entry["latency_ms"]) == {"p50", "p90", "p99", "p999", "max"}
    peer = doc["peers"]["http"]["uvicorn"]
    assert len(peer["runs"]) == 3
    assert set(peer["ratio"]) == {"p50", "p90", "p99", "p999", "max", "throughput"}
    assert doc["machine"]["cores"] >= 1
    assert doc["versions"]["hdrhistogram"]
    assert "<img" in (out / (sorted(out.glob("*.json"))[0].stem + ".html")).read_text()
    # Gating the result against itself: a pass when every run kept its schedule, inconclusive
    # when a machine hiccup made one INVALID (which one it was is recorded, so both are exact).
    [result_path] = out.glob("*.json")
    assert gate_main([str(result_path), str(result_path)]) == (0 if entry["valid"] else 2)
    # Only a valid result is written as a baseline.
    assert (tmp_path / "baseline.json").exists() is entry["valid"]


def test_a_closed_loop_run_is_always_valid_and_gates_against_itself(tmp_path: Path) -> None:
    # Closed loop cannot fall behind a schedule, so the whole path (result, baseline, gate)
    # runs every time, whatever the machine is doing.
    out, baseline = tmp_path / "results", tmp_path / "baseline.json"
    code = bench_main(
        [
            *argv(
                "http --subject hypercorn-trio --runs 3 --duration 0.4 --warmup 0 --connections 1 --processes 1 --closed-loop --out"
            ),
            str(out),
            "--write-baseline",
            str(baseline),
        ]
    )
    entry = only_result(out)["scenarios"]["http"]
    assert code == 0
    assert entry["valid"] is True and entry["mode"] == "closed-loop"
    assert [run["valid"] for run in entry["runs"]] == [True, True, True]
    assert entry["errors"] == 0
    assert gate_main([str(baseline), str(baseline)]) == 0


def test_jobs_against_the_processpool_peer(tmp_path: Path) -> None:
    code = bench_main(
        [
            *argv("jobs --subject processpool --runs 1 --duration 0.8 --warmup 0 --rate 20 --out"),
            str(tmp_path),
        ]
    )
    entry = only_result(tmp_path)["scenarios"]["jobs"]
    assert code == (0 if entry["valid"] else 2)  # inconclusive only for a recorded INVALID run
    assert entry["runs"][0]["requests"] == 16
    assert entry["errors"] == 0, entry["runs"][0]["error_samples"]


def test_ws_fanout_and_churn_against_the_websockets_peer(tmp_path: Path) -> None:
    code = bench_main(
        [
            *argv(
                "ws-fanout ws-churn --subject websockets --runs 1 --duration 0.8 --warmup 0 --rate 20 --subscribers 5 --out"
            ),
            str(tmp_path),
        ]
    )
    doc = only_result(tmp_path)
    fanout = doc["scenarios"]["ws-fanout"]
    churn = doc["scenarios"]["ws-churn"]
    assert code == (0 if fanout["valid"] and churn["valid"] else 2)
    assert fanout["published"] == 16
    assert fanout["deliveries"] == 16 * 5
    assert fanout["lost"] == 0
    assert fanout["duplicated"] == 0
    assert churn["requests"] == 16
    assert churn["errors"] == 0, churn["runs"][0]["error_samples"]
    assert json.dumps(doc)  # serialisable as written


def test_bench_refuses_an_unreadable_baseline_before_measuring(tmp_path: Path) -> None:
    bad = tmp_path / "baseline.json"
    bad.write_text("{}")
    assert bench_main(["http", "--baseline", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def test_a_target_without_websocket_endpoint_skips_ws_scenarios(tmp_path: Path) -> None:
    # the harness must not crash half-way: http is measured, ws-churn is recorded as skipped
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "perfgate.bench.peers", "uvicorn", "--ready-file", str(ready)]
    )
    try:
        for _ in range(200):
            if ready.exists():
                break
            time.sleep(0.05)
        doc = json.loads(ready.read_text())
        doc["ws"] = ""
        ready.write_text(json.dumps(doc))
        out = tmp_path / "r"
        code = bench_main(
            [
                *argv("http ws-churn --target"),
                str(ready),
                "--runs",
                "1",
                "--duration",
                "0.5",
                "--warmup",
                "0",
                "--rate",
                "20",
                "--out",
                str(out),
            ]
        )
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert code == 2
    result = only_result(out)
    assert list(result["scenarios"]) == ["http"]
    assert "no WebSocket endpoint" in result["skipped"]["ws-churn"]


def test_a_peer_exits_cleanly_when_its_lifeline_closes(tmp_path: Path) -> None:
    # the bench keeps each peer's stdin open; a bench killed with SIGKILL closes it
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perfgate.bench.peers",
            "hypercorn-trio",
            "--ready-file",
            str(ready),
            "--lifeline-stdin",
        ],
        stdin=subprocess.PIPE,
    )
    try:
        for _ in range(200):
            if ready.exists():
                break
            time.sleep(0.05)
        assert ready.exists()
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_scenario_whose_clients_crash_is_skipped_with_the_reason(tmp_path: Path) -> None:
    # nothing listens on the discard port: subscribers cannot connect, the clients exit
    out = tmp_path / "r"
    code = bench_main(
        [
            *argv("ws-fanout --target http://127.0.0.1:9 --target-ws ws://127.0.0.1:9"),
            *argv("--runs 1 --duration 0.5 --warmup 0 --out"),
            str(out),
        ]
    )
    assert code == 2
    [path] = out.glob("*.json")
    doc = json.loads(path.read_text())
    assert doc["scenarios"] == {}
    assert "client" in doc["skipped"]["ws-fanout"]


def test_the_default_suite_against_perfgate_itself(tmp_path: Path) -> None:
    # What `make bench` runs (every scenario, subject perfgate), as a very short smoke.
    out = tmp_path / "r"
    code = bench_main(
        [
            *argv("--subject perfgate --runs 1 --duration 0.5 --warmup 0 --rate 10"),
            *argv("--subscribers 3 --idle-connections 20 --idle-window 0.5 --processes 1 --out"),
            str(out),
        ]
    )
    doc = only_result(out)
    scenarios = doc["scenarios"]
    open_loop = {"http", "jobs", "ws-fanout", "ws-churn"}
    assert set(scenarios) == open_loop | {"jobs-throughput", "ws-idle"}
    assert doc.get("skipped", {}) == {}
    for name, entry in scenarios.items():
        assert entry["system"] == "perfgate", name
    for name in sorted(open_loop):
        entry = scenarios[name]
        assert entry["system"] == "perfgate", name
        assert entry["errors"] == 0, (name, entry["runs"][0]["error_samples"])
        assert entry["runs"][0]["requests"] == 5, name
    assert scenarios["ws-fanout"]["deliveries"] == 5 * 3
    throughput = scenarios["jobs-throughput"]
    assert throughput["mode"] == "closed-loop" and throughput["errors"] == 0
    assert throughput["requests"] > 0
    idle = scenarios["ws-idle"]
    assert idle["errors"] == 0 and idle["requests"] == 20  # every connection was opened
    assert idle["idle"]["connections"] == 20 and idle["idle"]["bytes_per_connection"] > 0
    assert code == (0 if all(entry["valid"] for entry in scenarios.values()) else 2)
