"""Request schemas: one table validates bodies and describes them in OpenAPI."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfgate.errors import ValidationError
from perfgate.schema import PUBLISH_MESSAGE, SUBMIT_JOB, Body

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def test_minimal_body_gets_defaults() -> None:
    parsed = SUBMIT_JOB.parse({"task": "echo"})
    assert parsed == {
        "task": "echo",
        "args": None,
        "priority": None,
        "timeout_s": None,
        "max_retries": None,
        "idempotency_key": None,
        "delay_s": None,
        "run_at": None,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "task"),
        ({"task": 3}, "task"),
        ({"task": "echo", "priority": "urgent"}, "priority"),
        ({"task": "echo", "timeout_s": -1}, "timeout_s"),
        ({"task": "echo", "timeout_s": 0}, "timeout_s"),
        ({"task": "echo", "max_retries": True}, "max_retries"),
        ({"task": "echo", "max_retries": 1.5}, "max_retries"),
        ({"task": "echo", "max_retries": 1e300}, "max_retries"),
        ({"task": "echo", "args": [1]}, "args"),
        ({"task": "echo", "tsak": "x"}, "tsak"),
    ],
)
def test_bad_fields_are_named(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        SUBMIT_JOB.parse(body)
    assert field in [e["field"] for e in info.value.extra["errors"]]


@given(json_values)
def test_any_json_is_accepted_or_a_validation_error(value: Any) -> None:
    try:
        parsed = SUBMIT_JOB.parse(value)
    except ValidationError as exc:
        assert exc.extra["errors"], "a refusal names at least one field"
        return
    assert isinstance(parsed["task"], str) and parsed["task"]


def test_integral_floats_are_integers_as_in_json_schema() -> None:
    parsed = SUBMIT_JOB.parse({"task": "echo", "max_retries": 3.0})
    assert parsed["max_retries"] == 3 and isinstance(parsed["max_retries"], int)


def test_json_schema_matches_the_table() -> None:
    schema = SUBMIT_JOB.json_schema()
    assert schema["required"] == ["task"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["priority"]["enum"] == ["high", "normal", "low", None]


PROBES = [None, True, 0, -1, 3, 1.5, 1e6, "", "high", "normal", "x" * 300, [], {}, {"a": 1}]


@pytest.mark.parametrize("body", [SUBMIT_JOB, PUBLISH_MESSAGE], ids=lambda b: b.name)
def test_the_published_schema_accepts_exactly_what_the_parser_accepts(body: Body) -> None:
    """For every field and a spread of values: 422 from the parser iff the schema refuses it
    (``"priority": null`` was accepted by one and refused by the other)."""
    validator = jsonschema.Draft202012Validator(body.json_schema())
    base = {f.name: ("echo" if f.type == "string" else 1) for f in body.fields if f.required}
    for field in body.fields:
        for value in PROBES:
            raw = {**base, field.name: value}
            try:
                body.parse(raw)
                parsed = True
            except ValidationError:
                parsed = False
            assert parsed == validator.is_valid(raw), (field.name, value)
