"""The pure pieces of the pool: framing, the priority queue, back-off, argv templates, lines,
the prefetch rule."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfgate.errors import ValidationError
from perfgate.pool import prefetch
from perfgate.pool.backoff import backoff_ceiling_s, backoff_delay_s
from perfgate.pool.framing import FrameDecoder, FrameError, encode_frame
from perfgate.pool.lines import LineSplitter
from perfgate.pool.queue import PriorityQueue
from perfgate.pool.template import placeholders, render_argv

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


# -- protocol -------------------------------------------------------------------------------


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


# -- priority queue -------------------------------------------------------------------------


def test_higher_priority_first_then_fifo() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=10, aging_s=100)
    for key, prio in [("l1", "low"), ("n1", "normal"), ("h1", "high"), ("n2", "normal")]:
        assert queue.push(key, key, prio, now=0.0)
    assert [queue.pop(now=0.0) for _ in range(5)] == ["h1", "n1", "n2", "l1", None]


def test_low_does_not_starve_under_a_steady_stream_of_high() -> None:
    aging_s = 1.0
    queue: PriorityQueue[str] = PriorityQueue(max_len=100, aging_s=aging_s)
    queue.push("low", "low", "low", now=0.0)
    now = 0.0
    popped_at = None
    # Every 0.1 s a new high job arrives and one job is taken.
    for step in range(1000):
        now = step * 0.1
        queue.push(f"h{step}", f"h{step}", "high", now=now)
        if queue.pop(now=now) == "low":
            popped_at = now
            break
    assert popped_at is not None
    assert popped_at <= 2 * aging_s + 0.1 + 1e-9


def test_full_queue_refuses_but_force_admits_a_retry() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=2, aging_s=1)
    assert queue.push("a", "a", "normal", now=0)
    assert queue.push("b", "b", "normal", now=0)
    assert not queue.push("c", "c", "high", now=0)
    assert len(queue) == 2
    assert queue.push("r", "r", "normal", now=0, force=True)
    assert queue.depth() == {"high": 0, "normal": 3, "low": 0}


def test_remove_by_key() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=5, aging_s=1)
    queue.push("a", "A", "low", now=0)
    queue.push("b", "B", "low", now=0)
    assert queue.remove("a") == "A"
    assert queue.remove("a") is None
    assert list(queue) == ["B"]
    assert len(queue) == 1


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["high", "normal", "low"]), st.floats(0, 50))))
def test_pop_returns_every_item_exactly_once(items: list[tuple[str, float]]) -> None:
    queue: PriorityQueue[int] = PriorityQueue(max_len=1000, aging_s=3)
    now = 0.0
    for index, (prio, gap) in enumerate(items):
        now += gap
        queue.push(str(index), index, prio, now=now)
    out = []
    while (item := queue.pop(now=now)) is not None:
        out.append(item)
    assert sorted(out) == list(range(len(items)))


def test_unknown_priority_is_refused() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=5, aging_s=1)
    with pytest.raises(ValueError, match="unknown priority 'urgent'"):
        queue.push("a", "a", "urgent", now=0)


def test_queue_bounds_are_checked() -> None:
    assert PriorityQueue(max_len=1, aging_s=0.001).max_len == 1  # the smallest allowed
    with pytest.raises(ValueError, match=r"^max_len must be >= 1$"):
        PriorityQueue(max_len=0, aging_s=1)
    with pytest.raises(ValueError, match=r"^aging_s must be > 0$"):
        PriorityQueue(max_len=1, aging_s=0)


def test_effective_rank_ages_by_waiting_time_over_aging_s() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=5, aging_s=4)
    assert queue.effective_rank("low", enqueued_at=10, now=12) == 1.5
    assert queue.effective_rank("high", enqueued_at=10, now=9) == 0.0  # no negative wait


def test_a_tie_goes_to_the_higher_priority() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=5, aging_s=1)
    queue.push("n", "n", "normal", now=0.0)
    queue.push("h", "h", "high", now=1.0)
    # At t=1 both heads rank 0: the normal one aged by exactly one priority level.
    assert queue.peek(now=1.0) == "h"
    assert queue.pop(now=1.0) == "h"


def test_peek_shows_what_pop_takes_and_leaves_it() -> None:
    queue: PriorityQueue[str] = PriorityQueue(max_len=5, aging_s=100)
    assert queue.peek(now=0) is None
    for key, prio in [("l", "low"), ("n", "normal"), ("n2", "normal")]:
        queue.push(key, key, prio, now=0)
    assert queue.peek(now=0) == "n"
    assert len(queue) == 3
    assert queue.remove("l") == "l"
    assert len(queue) == 2
    assert queue.pop(now=0) == "n"
    assert len(queue) == 1
    assert queue.peek(now=0) == queue.pop(now=0) == "n2"
    assert len(queue) == 0


# -- back-off -------------------------------------------------------------------------------


def test_backoff_ceiling_doubles_then_caps() -> None:
    ceilings = [backoff_ceiling_s(n, base_s=0.5, cap_s=5.0) for n in range(1, 7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff_ceiling_s(10_000, base_s=0.5, cap_s=5.0) == 5.0


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=200), st.integers())
def test_backoff_delay_is_full_jitter(attempt: int, seed: int) -> None:
    rng = random.Random(seed)
    delay = backoff_delay_s(attempt, base_s=0.1, cap_s=3.0, uniform=rng.uniform)
    assert 0.0 <= delay <= backoff_ceiling_s(attempt, base_s=0.1, cap_s=3.0)


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1, got 0"):
        backoff_ceiling_s(0, base_s=1, cap_s=1)


# -- argv templates -------------------------------------------------------------------------


def test_each_value_stays_one_argument() -> None:
    argv = render_argv(
        ["make", "-C", "{project}", "--jobs={n}", "{{literal}}"],
        {"project": "my dir; rm -rf /", "n": 4},
    )
    assert argv == ["make", "-C", "my dir; rm -rf /", "--jobs=4", "{literal}"]


def test_booleans_and_floats() -> None:
    assert render_argv(["{a}", "{b}"], {"a": True, "b": 1.5}) == ["true", "1.5"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({}, "args.project"),
        ({"project": ["a", "b"]}, "args.project"),
        ({"project": {"x": 1}}, "args.project"),
        ({"project": None}, "args.project"),
        ({"project": "x", "extra": "y"}, "args.extra"),
    ],
)
def test_missing_extra_or_non_scalar_args_are_422(args: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        render_argv(["make", "{project}"], args)
    assert info.value.status == 422
    assert info.value.extra["field"] == field


def test_stray_brace_in_template_is_reported() -> None:
    with pytest.raises(ValueError, match="stray"):
        placeholders(["echo", "{oops"])
    with pytest.raises(ValidationError):
        render_argv(["echo", "}"], {})


# -- lines ----------------------------------------------------------------------------------


def test_lines_split_across_chunks_and_flush() -> None:
    splitter = LineSplitter(100)
    assert splitter.feed(b"one\ntw") == ["one"]
    assert splitter.feed(b"o\r\nthree") == ["two"]
    assert splitter.flush() == ["three"]
    assert splitter.flush() == []


def test_long_line_is_cut_not_buffered_forever() -> None:
    splitter = LineSplitter(4)
    assert splitter.feed(b"abcdefghij") == ["abcd", "efgh"]
    assert splitter.feed(b"\n") == ["ij"]


def test_invalid_utf8_is_replaced() -> None:
    assert LineSplitter(10).feed(b"\xff\n") == ["\ufffd"]


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


# -- prefetch -------------------------------------------------------------------------------


def test_short_means_known_and_at_most_the_limit() -> None:
    assert prefetch.is_short(0.001)
    assert prefetch.is_short(prefetch.MAX_RUN_S)
    assert not prefetch.is_short(prefetch.MAX_RUN_S * 1.01)
    assert not prefetch.is_short(None)


def test_one_short_job_ahead_is_fine_a_long_or_unknown_one_is_not() -> None:
    assert not prefetch.may_queue_behind([])  # an idle worker is picked as idle, not here
    assert prefetch.may_queue_behind([prefetch.MAX_RUN_S])
    assert not prefetch.may_queue_behind([1.0])
    assert not prefetch.may_queue_behind([math.inf])


def test_several_ahead_only_while_their_sum_is_small_and_depth_bounded() -> None:
    tiny = prefetch.MAX_AHEAD_S / 20
    assert prefetch.may_queue_behind([tiny, tiny])
    assert not prefetch.may_queue_behind([prefetch.MAX_RUN_S, tiny])  # 50 ms + a queue: no
    assert not prefetch.may_queue_behind([tiny, math.inf])
    assert prefetch.may_queue_behind([tiny] * (prefetch.MAX_DEPTH - 1))
    assert not prefetch.may_queue_behind([tiny] * prefetch.MAX_DEPTH)
    half = prefetch.MAX_AHEAD_S / 2
    assert prefetch.may_queue_behind([half, half])
    assert not prefetch.may_queue_behind([half, half, half])
