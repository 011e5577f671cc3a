"""Listing cursors: they round-trip, and anything else is a 400."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfgate.errors import BadRequest
from perfgate.store.paging import decode_cursor, encode_cursor


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
