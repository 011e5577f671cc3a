"""The client's protocol logic, without I/O."""

from __future__ import annotations

import json

import pytest

from perfgate.client import _errors as e
from perfgate.client import _protocol as p


def test_endpoints_and_the_advertised_gateway() -> None:
    base = p.parse_endpoint("https://example.com/api/")
    assert (base.tls, base.host, base.port, base.path) == (True, "example.com", 443, "/api")
    assert base.host_header == "example.com"
    assert p.parse_endpoint("http://[::1]:8080").host_header == "[::1]:8080"
    with pytest.raises(ValueError, match="http://"):
        p.parse_endpoint("ftp://x")
    with pytest.raises(ValueError, match="no host"):
        p.parse_endpoint("http://")
    # A path: the gateway is on the HTTP host (a proxy serving both), TLS as the base.
    assert p.resolve_ws_url(base, "/ws") == p.Endpoint(True, "example.com", 443, "/ws")
    assert p.resolve_ws_url(base, "ws://10.0.0.1:8081/ws") == p.Endpoint(
        False, "10.0.0.1", 8081, "/ws"
    )
    for bad in (None, "", 3, "http://x/ws"):
        with pytest.raises(e.ProtocolViolation):
            p.resolve_ws_url(base, bad)


def test_requests_carry_json_token_and_query() -> None:
    end = p.parse_endpoint("http://127.0.0.1:8080/base")
    req = p.build_request(
        end, "POST", "/v1/jobs", token="t0k", body={"task": "é"}, query={"wait": 2.5, "x": None}
    )
    headers = dict(req.headers)
    assert req.target == "/base/v1/jobs?wait=2.5"
    assert headers["Authorization"] == "Bearer t0k"
    assert headers["Host"] == "127.0.0.1:8080"
    assert json.loads(req.body) == {"task": "é"}
    assert headers["Content-Length"] == str(len(req.body))
    get = p.build_request(end, "GET", p.job_path("a/b"))
    assert get.target == "/base/v1/jobs/a%2Fb" and "Content-Length" not in dict(get.headers)
    with pytest.raises(ValueError):  # NaN is not JSON: refused before anything is sent
        p.build_request(end, "POST", "/v1/jobs", body={"x": float("nan")})


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, e.BadRequest),
        (401, e.Unauthorized),
        (403, e.Forbidden),
        (404, e.NotFound),
        (409, e.Conflict),
        (413, e.BadRequest),
        (422, e.Invalid),
        (429, e.RateLimited),
        (500, e.ServerError),
        (503, e.Unavailable),
    ],
)
def test_problems_become_typed_errors(status: int, cls: type[e.ProblemError]) -> None:
    problem = {"code": "x", "detail": "why", "errors": [{"field": "task"}]}
    with pytest.raises(cls) as info:
        p.decode_response(status, [("Retry-After", "3")], json.dumps(problem).encode())
    err = info.value
    assert isinstance(err, e.PerfgateClientError)
    assert (err.status, err.code, err.detail, err.problem) == (status, "x", "why", problem)
    assert err.errors == [{"field": "task"}]
    if isinstance(err, e.RateLimited | e.Unavailable):
        assert err.retry_after_s == 3.0


def test_answers_that_are_not_json() -> None:
    assert p.decode_response(200, [], b'{"a": 1}') == {"a": 1}
    with pytest.raises(e.ProtocolViolation):
        p.decode_response(200, [], b"<html>")
    with pytest.raises(e.ServerError) as info:  # a proxy's HTML error page
        p.decode_response(502, [("retry-after", "soon")], b"<html>bad gateway</html>")
    assert "bad gateway" in info.value.detail


def test_submit_frames_leave_defaults_to_the_server() -> None:
    assert p.submit_body("echo") == {"task": "echo"}
    body = p.submit_body(
        "echo", {"x": 1}, priority="high", timeout_s=2, max_retries=0, idempotency_key="k"
    )
    assert body == {
        "task": "echo",
        "args": {"x": 1},
        "priority": "high",
        "timeout_s": 2,
        "max_retries": 0,
        "idempotency_key": "k",
    }
    assert json.loads(p.submit_frame(7, body)) == {**body, "op": "submit", "id": 7}
    assert json.loads(p.subscribe_frame(1, "jobs:a", 4, "ep")) == {
        "op": "subscribe",
        "channel": "jobs:a",
        "since": 4,
        "epoch": "ep",
        "id": 1,
    }
    assert "epoch" not in json.loads(p.subscribe_frame(1, "jobs:a", 0, None))


def test_server_frames() -> None:
    assert p.parse_frame('{"type":"welcome","session":"s","heartbeat_s":5}') == []
    (ack,) = p.parse_frame('{"type":"ack","id":3,"job":{"id":"j"}}')
    assert ack == p.Reply(3, True, {"type": "ack", "id": 3, "job": {"id": "j"}})
    batch = '{"type":"batch","messages":[{"type":"message","channel":"c","offset":1,"data":1},{"type":"message","channel":"c","offset":2,"data":2}]}'
    assert p.parse_frame(batch) == [p.ChannelMessage("c", 1, 1), p.ChannelMessage("c", 2, 2)]
    for junk in (
        "nope",
        "[1]",
        '{"type":"message","channel":"c"}',
        '{"type":"batch"}',
        '{"type":"message","channel":"c","offset":true}',
    ):
        with pytest.raises(e.ProtocolViolation):
            p.parse_frame(junk)


def test_error_frames_map_like_problems() -> None:
    err = p.frame_error(
        {
            "type": "error",
            "id": 1,
            "code": "invalid",
            "message": "bad",
            "errors": [{"field": "task"}],
        }
    )
    assert isinstance(err, e.Invalid) and err.status == 422 and err.detail == "bad"
    assert err.errors == [{"field": "task"}]
    assert isinstance(p.frame_error({"code": "queue_full", "message": ""}), e.RateLimited)
    assert isinstance(p.frame_error({"code": "unavailable"}), e.Unavailable)
    assert isinstance(p.frame_error({"code": "something_new"}), e.BadRequest)


def test_job_outcomes() -> None:
    assert p.job_outcome({"id": "j", "state": "succeeded", "result": [1]}) == [1]
    error = {"type": "ValueError", "message": "no"}
    for state, cls in (("failed", e.JobFailed), ("dead", e.JobDead), ("cancelled", e.JobCancelled)):
        job = {"id": "j", "state": state, "error": error}
        with pytest.raises(cls) as info:
            p.job_outcome(job)
        assert (info.value.job_id, info.value.state, info.value.error, info.value.job) == (
            "j",
            state,
            error,
            job,
        )
        assert "ValueError: no" in str(info.value)
    assert issubclass(e.JobDead, e.JobFailed)
    with pytest.raises(e.ProtocolViolation):
        p.job_outcome({"id": "j", "state": "running"})
    with pytest.raises(e.ProtocolViolation):
        p.job_of({"state": "queued"})
    assert p.is_final_event({"event": "state", "state": "dead"})
    assert not p.is_final_event({"event": "state", "state": "retrying"})


def test_cursor_admits_each_offset_once_and_resumes() -> None:
    cursor = p.EventCursor()
    cursor.acknowledged({"epoch": "e1", "recovered": True})
    assert [o for o in (1, 2, 3, 2, 3, 4) if cursor.admit(o)] == [1, 2, 3, 4]
    assert cursor.resubscribe() == (4, "e1")
    cursor.acknowledged({"epoch": "e1"})  # a resume that the history covered
    with pytest.raises(e.EventsLost):
        cursor.acknowledged({"epoch": "e2", "recovered": False})
    fresh = p.EventCursor()
    fresh.acknowledged({"epoch": "e3", "recovered": False})  # nothing seen yet: nothing lost
    assert fresh.resubscribe() == (0, "e3")


def test_frame_pace_stays_under_the_gateway_limit() -> None:
    pace = p.FramePace(100.0)  # refills 80/s, holds 40
    assert sum(pace.take(0.0) for _ in range(100)) == 40
    assert not pace.take(0.0)
    assert sum(pace.take(0.5) for _ in range(100)) == 40
    sent = sum(pace.take(t / 1000) for t in range(1000, 11_000))  # 10 s, a try every ms
    assert sent <= 100 * 10
    assert p.FramePace(0.0).take(0.0) and p.FramePace(0.0).room(0.0) == float("inf")
    assert p.FramePace(1.0).capacity == 1.0


def test_submit_pace_follows_what_the_server_says() -> None:
    # A server that paces submits itself (by those in flight): none on the client side.
    unpaced = p.submit_pace({"ws_rate_limit_per_s": 100, "ws_submits_in_flight": 64})
    assert unpaced.room(0.0) == float("inf")
    # An older server closes the connection over its frame limit: keep under it.
    assert p.submit_pace({"ws_rate_limit_per_s": 10}).rate_per_s == 10.0
    assert p.submit_pace({"ws_rate_limit_per_s": 0}).room(0.0) == float("inf")
    for info in ({}, None, {"ws_rate_limit_per_s": True}, {"ws_submits_in_flight": "64"}):
        assert p.submit_pace(info).rate_per_s == 100.0  # the gateway's default limit
