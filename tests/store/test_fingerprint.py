"""Idempotency fingerprints: canonical JSON, and which parts of a submit body count."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfgate.errors import ValidationError
from perfgate.store import body_fingerprint, canonical_json

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
