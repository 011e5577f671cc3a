"""The journal's pure helpers: fingerprints, cursors, retention policy, the JSON face."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfgate.errors import BadRequest, ValidationError
from perfgate.store import JobRecord, body_fingerprint, canonical_json, iso_utc, new_job_id
from perfgate.store.paging import decode_cursor, encode_cursor
from perfgate.store.retention import (
    MAX_LOG_LINE_CHARS,
    SWEEP_MAX_PERIOD_S,
    SWEEP_MIN_PERIOD_S,
    clip_line,
    first_kept_seq,
    sweep_period_s,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_canonical_json_ignores_key_order(value: dict[str, object]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert canonical_json(value) == canonical_json(reordered)


def test_canonical_json_is_compact_sorted_utf8() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


@pytest.mark.parametrize("bad", [math.nan, math.inf, b"bytes", {"s": {1, 2}}])
def test_canonical_json_refuses_what_json_cannot_carry(bad: object) -> None:
    with pytest.raises(ValidationError):
        canonical_json(bad)


def test_body_fingerprint_same_body_any_order_and_key_excluded() -> None:
    a = {"task": "echo", "args": {"x": 1, "y": [1, 2]}, "idempotency_key": "k1"}
    b = {"args": {"y": [1, 2], "x": 1}, "task": "echo", "idempotency_key": "k2"}
    assert body_fingerprint(a) == body_fingerprint(b)


def test_body_fingerprint_null_is_absent_but_a_value_is_not() -> None:
    base = {"task": "echo", "args": {}}
    assert body_fingerprint(base) == body_fingerprint({**base, "priority": None})
    assert body_fingerprint(base) != body_fingerprint({**base, "priority": "normal"})


@pytest.mark.parametrize(
    "change",
    [
        {"task": "sleep"},
        {"args": {"x": 2}},
        {"priority": "high"},
        {"timeout_s": 5},
        {"max_retries": 1},
        {"args": {"x": 1.0}},
        {"delay_s": 5},
        {"run_at": "2030-01-01T09:00:00Z"},
    ],
)
def test_body_fingerprint_differs_when_the_job_differs(change: dict[str, object]) -> None:
    base = {"task": "echo", "args": {"x": 1}}
    assert body_fingerprint(base) != body_fingerprint({**base, **change})


@given(
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.text(min_size=1, max_size=40),
)
def test_cursor_round_trips(created_at: float, job_id: str) -> None:
    assert decode_cursor(encode_cursor(created_at, job_id)) == (created_at, job_id)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "!!!",
        "bm90IGpzb24",
        encode_cursor(1.0, "x")[:-3],
        "WzIsMS4wLCJ4Il0",  # version 2
        "WzEsIngiLCJ4Il0",  # created_at not a number
        "WzEsMS4wLDNd",
    ],  # id not a string
)
def test_bad_cursor_is_bad_request(bad: str) -> None:
    with pytest.raises(BadRequest):
        decode_cursor(bad)


def test_sweep_period_follows_ttl_within_bounds() -> None:
    assert sweep_period_s(100.0) == 10.0
    assert sweep_period_s(0.5) == SWEEP_MIN_PERIOD_S
    assert sweep_period_s(86_400.0) == SWEEP_MAX_PERIOD_S


def test_clip_line() -> None:
    assert clip_line("hello\r\n") == "hello"
    long = clip_line("x" * (MAX_LOG_LINE_CHARS * 3))
    assert len(long) == MAX_LOG_LINE_CHARS
    assert long.endswith("[truncated]")


@given(st.integers(0, 10_000), st.integers(1, 1000))
def test_first_kept_seq_keeps_exactly_the_last_n(last: int, cap: int) -> None:
    first = first_kept_seq(last, cap)
    assert first >= 1
    assert last - first + 1 == min(last, cap) or last == 0


def test_iso_utc() -> None:
    assert iso_utc(1_700_000_000.5) == "2023-11-14T22:13:20.500Z"
    assert iso_utc(None) is None


def test_job_ids_sort_by_creation_time_and_are_unique() -> None:
    ids = [new_job_id(1_700_000_000.0 + i) for i in range(100)]
    assert ids == sorted(ids)
    assert len({new_job_id(1.0) for _ in range(1000)}) == 1000


def test_to_json_uses_the_design_field_names() -> None:
    job = JobRecord(id="j1", task="echo", args={"a": 1}, created_at=1_700_000_000.0)
    data = job.to_json()
    for name in (
        "id",
        "task",
        "args",
        "state",
        "priority",
        "attempts",
        "progress",
        "result",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "cached",
    ):
        assert name in data
    assert data["created_at"] == "2023-11-14T22:13:20.000Z"
    assert data["state"] == "queued"
    assert "fingerprint" not in data


def test_finish_fields_is_the_one_rule_for_final_transitions() -> None:
    from perfgate.store.record import finish_fields

    done = finish_fields("succeeded", result={"x": 1}, error=None, cached=True, now=5.0)
    assert done == {
        "state": "succeeded",
        "result": {"x": 1},
        "error": None,
        "cached": True,
        "finished_at": 5.0,
        "progress": 1.0,
    }
    failed = finish_fields("failed", result=None, error={"type": "E"}, cached=False, now=6.0)
    assert "progress" not in failed
    with pytest.raises(ValueError, match="not a final state"):
        finish_fields("running", result=None, error=None, cached=False, now=7.0)
