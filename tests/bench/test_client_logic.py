"""Client-side logic without sockets: frames, deliveries, the recorder, merging processes."""

from __future__ import annotations

import json

import pytest

from perfgate.bench import histogram as hdr
from perfgate.bench.recorder import Recorder
from perfgate.bench.runner import RunSettings, merge_clients
from perfgate.bench.scenarios._base import UnexpectedResponse, ws_endpoint
from perfgate.bench.scenarios.jobs import check_finished_job
from perfgate.bench.scenarios.ws_client import ServerReplyError, payloads
from perfgate.bench.scenarios.ws_fanout import DeliveryTally, record_frame


def test_payloads_of_message_batch_and_control_frames() -> None:
    assert payloads(json.dumps({"type": "message", "channel": "c", "offset": 1, "data": 5})) == [5]
    batch = {"type": "batch", "messages": [{"data": 1}, {"data": 2}, "junk"]}
    assert payloads(json.dumps(batch)) == [1, 2]
    assert payloads(json.dumps({"type": "welcome", "session": "s"})) == []
    with pytest.raises(ServerReplyError):
        payloads("not json")


def test_record_frame_counts_duplicates_and_measures_from_intended_time() -> None:
    tally, rec = DeliveryTally(), Recorder()
    msg = {"type": "message", "data": {"seq": 7, "t_intended": 10.0, "t_sent": 10.5}}
    record_frame(json.dumps(msg), tally, rec, now_s=10.75)
    record_frame(json.dumps({"type": "batch", "messages": [msg, msg]}), tally, rec, now_s=11.0)
    assert tally.seen == {7}
    assert tally.duplicated == 2
    assert rec.completed == 1
    assert hdr.summary_ms(rec.corrected)["max"] == pytest.approx(750.0, rel=0.001)
    assert hdr.summary_ms(rec.uncorrected)["max"] == pytest.approx(250.0, rel=0.001)


def test_recorder_keeps_corrected_and_uncorrected_apart_and_counts_timeouts() -> None:
    rec = Recorder()
    rec.schedule_start_s, rec.schedule_end_s = 0.0, 1.0
    rec.on_send(intended_s=0.0, sent_s=1.0)  # the generator was 1 s late
    rec.on_done(0.0, 1.0, 1.002)
    rec.on_send(intended_s=0.01, sent_s=1.003)
    rec.on_timeout(0.01, 1.003, timeout_s=2.0)
    assert (rec.sent, rec.completed, rec.errors, rec.timeouts) == (2, 1, 1, 1)
    assert rec.to_json()["first_quarter_lag_s"] == pytest.approx((1.0 + 0.993) / 2)
    corrected = hdr.summary_ms(rec.corrected)
    uncorrected = hdr.summary_ms(rec.uncorrected)
    assert corrected["p50"] == pytest.approx(1002.0, rel=0.001)
    assert uncorrected["p50"] == pytest.approx(2.0, rel=0.01)
    assert uncorrected["max"] >= 2000.0  # a timeout counts as latency >= the timeout
    assert rec.error_samples == ["timeout after 2s"]
    assert hdr.summary_ms(rec.send_lag)["max"] == pytest.approx(1000.0, rel=0.001)


def _client(sent: int, last_sent: float, **extra: object) -> dict[str, object]:
    """A client scheduled to send ``sent`` requests evenly over [0, 1) that sent them evenly
    until ``last_sent`` instead."""
    rec = Recorder(schedule_start_s=0.0, schedule_end_s=1.0, scheduled=sent)
    for i in range(sent):
        at = i * last_sent / max(1, sent - 1)
        rec.on_send(i / sent, at)
        rec.on_done(i / sent, at, at + 0.001)
    return {"event": "result", "requests": rec.to_json(), "deliveries": None, **extra}


def test_merge_clients_marks_a_late_generator_invalid() -> None:
    settings = RunSettings("http", rate_per_s=100.0, duration_s=1.0, connections=2)
    on_time = merge_clients(settings, 0.0, [_client(50, 0.98), _client(50, 0.98)])
    late = merge_clients(settings, 0.0, [_client(50, 0.98), _client(50, 1.5)])
    assert on_time.summary["achieved_rate"] == pytest.approx(100.0)
    assert on_time.summary["valid"] is True
    # the late client sent its 50 requests over 1.5 s instead of 1 s
    assert late.summary["achieved_rate"] == pytest.approx(50 + 50 / 1.5, rel=0.05)
    assert late.summary["lag_growth"] == pytest.approx(0.5, rel=0.1)
    assert late.summary["valid"] is False
    assert set(late.summary) >= {
        "latency_ms",
        "uncorrected_latency_ms",
        "send_lag_ms",
        "offered_rate",
    }


def test_merge_clients_derives_lost_deliveries_and_counts_them_at_the_timeout() -> None:
    settings = RunSettings("ws-fanout", 10.0, 1.0, 1, subscribers=4, timeout_s=2.0)
    deliveries = Recorder()
    for seq in range(10):
        deliveries.on_done(seq * 0.1, seq * 0.1, seq * 0.1 + 0.005)
    procs = [
        _client(
            10,
            0.9,
            deliveries=deliveries.to_json(),
            subscribers=2,
            unique_deliveries=10 + 9,
            duplicated=1,
        ),
        _client(
            0,
            0.0,
            deliveries=Recorder().to_json(),
            subscribers=2,
            unique_deliveries=20,
            duplicated=0,
        ),
    ]
    merged = merge_clients(settings, 0.0, procs).summary
    assert merged["published"] == 10
    assert merged["lost"] == 10 * 4 - 39
    assert merged["duplicated"] == 1
    assert merged["errors"] == 1
    assert merged["latency_ms"]["max"] >= 2000.0


def test_jobs_scenario_checks_state_and_echo() -> None:
    check_finished_job({"id": "1", "state": "succeeded", "result": {"seq": 1}}, {"seq": 1})
    with pytest.raises(UnexpectedResponse, match="failed"):
        check_finished_job({"id": "1", "state": "failed", "error": "boom"}, {"seq": 1})
    with pytest.raises(UnexpectedResponse, match="echo returned"):
        check_finished_job({"id": "1", "state": "succeeded", "result": {}}, {"seq": 1})


def test_ws_endpoint_defaults_to_the_design_path() -> None:
    assert ws_endpoint("ws://127.0.0.1:8081") == "ws://127.0.0.1:8081/ws"
    assert ws_endpoint("ws://h:1/") == "ws://h:1/ws"
    assert ws_endpoint("ws://h:1/custom") == "ws://h:1/custom"


def test_a_stall_at_the_very_end_does_not_invalidate_the_run() -> None:
    # the last 4 of 50 sends went out 0.3 s late (a pause): latency charges them, but the
    # generator kept its rate for the run as a whole
    rec = Recorder(schedule_start_s=0.0, schedule_end_s=1.0, scheduled=50)
    for i in range(50):
        sent = i / 50 + (0.3 if i >= 46 else 0.0)
        rec.on_send(i / 50, sent)
        rec.on_done(i / 50, sent, sent + 0.001)
    settings = RunSettings("http", rate_per_s=50.0, duration_s=1.0, connections=1, processes=1)
    run = merge_clients(settings, 0.0, [{"requests": rec.to_json(), "deliveries": None}]).summary
    assert run["valid"] is True
    assert run["achieved_rate"] == pytest.approx(50.0)
    assert run["latency_ms"]["max"] >= 300.0
