"""Strict JSON parsing (perfgate.jsontext): what it returns can always be encoded again."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfgate.errors import ValidationError
from perfgate.jsontext import MAX_DEPTH, JsonTextError, check_value, loads
from perfgate.pool.framing import encode_frame
from perfgate.store import body_fingerprint

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _strict(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


@given(VALUES)
def test_every_json_value_round_trips(value: Any) -> None:
    assert loads(_strict(value)) == value
    assert loads(json.dumps(value)) == value  # ASCII escapes of real characters are fine


def _plant(value: Any, bad: Any, depth: int, in_list: bool) -> Any:
    """``value`` and ``bad`` side by side, ``bad`` nested ``depth`` containers down."""
    for level in range(depth):
        bad = [1, bad] if level % 2 else {"k": bad}
    return [value, bad] if in_list else {"v": value, "b": bad}


BAD_TEXT = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e400",
    '"\\ud800"',
    '"a\\udfffb"',
    '{"\\udc00": 1}',
    '["ok", {"x": ["\\ud83d"]}]',  # half of a pair
    "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    '{"a": 1',
    "",
]


@pytest.mark.parametrize("text", BAD_TEXT)
def test_text_json_cannot_carry_is_refused(text: str) -> None:
    with pytest.raises(JsonTextError):
        loads(text)
    with pytest.raises(JsonTextError):
        loads(text.encode())


def test_a_paired_surrogate_escape_is_one_character() -> None:
    assert loads('"\\ud83d\\ude00"') == "\U0001f600"
    with pytest.raises(JsonTextError):
        loads('{"a": "\ud800"}')  # a raw lone surrogate in a str built by the caller


def test_not_utf8_and_too_deep_for_the_parser() -> None:
    with pytest.raises(JsonTextError, match="UTF-8"):
        loads(b'"\xff"')
    with pytest.raises(JsonTextError):
        loads("[" * 100_000 + "]" * 100_000)


BAD_VALUES = (
    st.sampled_from([math.nan, math.inf, -math.inf])
    | SURROGATES
    | SURROGATES.map(lambda c: f"text{c}text")
)


@given(VALUES, BAD_VALUES, st.integers(0, 6), st.booleans())
def test_a_bad_value_anywhere_is_found(value: Any, bad: Any, depth: int, in_list: bool) -> None:
    with pytest.raises(JsonTextError):
        check_value(_plant(value, bad, depth, in_list))


@given(VALUES, SURROGATES)
def test_a_surrogate_in_any_key_is_found(value: Any, surrogate: str) -> None:
    with pytest.raises(JsonTextError) as info:
        check_value({"outer": {f"k{surrogate}": value}})
    assert info.value.path == "outer"


def test_the_path_names_the_place() -> None:
    with pytest.raises(JsonTextError) as info:
        check_value({"args": {"files": ["a", "b", "\ud800"]}})
    assert info.value.path == "args.files[2]"
    with pytest.raises(JsonTextError):
        check_value({"x": {1, 2}})


def test_fingerprints_and_worker_frames_refuse_what_is_not_utf8() -> None:
    # The last lines of defence behind loads(): a 422, not a UnicodeEncodeError (500), and a
    # task result that fails in the worker rather than on the server (issue 19.7).
    with pytest.raises(ValidationError):
        body_fingerprint({"task": "echo", "args": {"x": "\ud800"}})
    with pytest.raises(ValueError):
        encode_frame({"event": "result", "result": "\udcff"})
    assert encode_frame({"text": "é"}).endswith('"é"}'.encode())
