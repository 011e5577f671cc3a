"""The pool's wire framing: length-prefixed JSON frames, decoded from any chunking."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfgate.pool.framing import FrameDecoder, FrameError, encode_frame

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(st.dictionaries(st.text(), json_values), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_frames_survive_any_chunking(messages: list[dict[str, object]], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(m) for m in messages)
    decoder = FrameDecoder()
    decoded: list[dict[str, object]] = []
    start = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        decoded += decoder.feed(stream[start:cut])
        start = max(start, cut)
    assert decoded == messages
    assert decoder.pending_bytes == 0


def test_truncated_frame_is_pending_not_decoded() -> None:
    frame = encode_frame({"ev": "done"})
    decoder = FrameDecoder()
    assert decoder.feed(frame[:-1]) == []
    assert decoder.pending_bytes == len(frame) - 1


def test_oversized_frame_is_a_protocol_error() -> None:
    decoder = FrameDecoder(max_frame_bytes=10)
    with pytest.raises(FrameError, match="exceeds"):
        decoder.feed(encode_frame({"data": "x" * 20}))


@pytest.mark.parametrize("body", [b"[1, 2]", b"not json", b"\xff\xfe"])
def test_non_object_or_garbage_frame_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(FrameError):
        FrameDecoder().feed(len(body).to_bytes(4, "big") + body)


def test_encode_refuses_what_json_cannot_say() -> None:
    with pytest.raises(TypeError):
        encode_frame({"x": {1, 2}})
    with pytest.raises(ValueError):
        encode_frame({"x": float("nan")})


def test_frames_are_compact_json() -> None:
    frame = encode_frame({"a": [1, 2]})
    assert json.loads(frame[4:]) == {"a": [1, 2]}
    assert b" " not in frame


def test_many_frames_in_one_chunk_come_out_in_order() -> None:
    messages = [{"ev": "done", "ok": True, "result": i} for i in range(50)]
    data = b"".join(encode_frame(message) for message in messages)
    decoder = FrameDecoder()
    assert decoder.feed(data + encode_frame({"ev": "log"})[:3]) == messages
    assert decoder.pending_bytes == 3


def test_a_non_utf8_frame_is_a_protocol_error() -> None:
    body = b'{"a": "\xff"}'  # well-formed JSON, but not UTF-8
    frame = len(body).to_bytes(4, "big") + body
    with pytest.raises(FrameError):
        FrameDecoder().feed(frame)
