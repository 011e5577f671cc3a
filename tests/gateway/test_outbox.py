"""A connection's outbox rules: byte budget, the one batching rule, frame planning and the frame cache (perfgate.gateway.outbox)."""

import json
import math

import pytest

from perfgate.broker import Message
from perfgate.gateway import protocol
from perfgate.gateway.outbox import (
    BatchPlan,
    ByteBudget,
    FrameCache,
    encode,
    plan_frames,
    websocket_frame,
)


def test_a_message_is_held_once_encoded_and_batches_reuse_it() -> None:
    message = Message("c", 5, {"k": "é"}, "normal", 0.0)
    assert message.__slots__ == ("channel", "offset", "priority", "published_at", "wire")
    frame = protocol.message_frame(message)
    assert message.wire == websocket_frame(frame)
    assert message.size_bytes == len(frame.encode()) and message.data == {"k": "é"}
    assert json.loads(frame) == {"type": "message", "channel": "c", "offset": 5, "data": {"k": "é"}}
    other = Message("c", 6, [1], "normal", 0.0)
    batch, count = encode([message, other])
    assert count == 2
    assert json.loads(batch) == {
        "type": "batch",
        "messages": [json.loads(frame), json.loads(protocol.message_frame(other))],
    }
    assert encode([message]) == (frame, 1)


def test_byte_budget_drops_over_budget_and_tracks_slowness() -> None:
    budget = ByteBudget(100, grace_s=2.0)
    assert budget.try_reserve(60, now=0.0)
    assert not budget.try_reserve(60, now=1.0)
    assert budget.dropped == 1 and budget.over_since == 1.0
    assert not budget.is_slow(2.5)
    assert budget.is_slow(3.0)
    budget.force_reserve(10)  # control frames are never refused
    assert budget.queued_bytes == 70
    budget.release(10)
    assert budget.over_since == 1.0  # still above half: no forgiveness
    budget.release(20)
    assert budget.over_since is None and budget.queued_bytes == 40
    assert budget.peak_bytes == 70


def test_byte_budget_edges() -> None:
    budget = ByteBudget(100, grace_s=2.0)
    assert budget.peak_bytes == 0 and budget.over_since is None
    assert budget.try_reserve(60, now=0.0)
    assert budget.try_reserve(40, now=0.0)  # exactly the budget fits
    assert not budget.try_reserve(1, now=1.0)
    assert not budget.try_reserve(1, now=2.0)
    assert budget.dropped == 2 and budget.over_since == 1.0  # from the first refusal on
    budget.release(50)
    assert budget.over_since == 1.0  # at half: not yet below it
    budget.release(1)
    assert budget.over_since is None


def test_drops_decided_elsewhere_are_counted_and_start_the_clock_once() -> None:
    budget = ByteBudget(100, grace_s=2.0)
    budget.drop(now=5.0)
    budget.drop(now=6.0)
    assert budget.dropped == 2 and budget.over_since == 5.0
    assert budget.is_slow(7.0) and not budget.is_slow(6.9)


def test_batch_plan_send_at_is_the_one_batching_rule() -> None:
    plan = BatchPlan(window_s=0.005, max_messages=3)
    assert plan.enabled
    # Leading edge: a quiet connection sends at once.
    assert plan.send_at(10.0, -math.inf, 1, False) == 10.0
    assert plan.send_at(10.0, 9.0, 1, False) == 10.0
    # Within the window after a write: wait for its end...
    assert plan.send_at(10.0, 9.999, 1, False) == pytest.approx(10.004)
    # ...unless the batch is full or urgent (a high message, a control frame).
    assert plan.send_at(10.0, 9.999, 3, False) == 10.0
    assert plan.send_at(10.0, 9.999, 1, True) == 10.0
    off = BatchPlan(window_s=0.0, max_messages=64)
    assert not off.enabled and off.send_at(10.0, 9.999, 1, False) == 10.0


def test_plan_frames_keeps_order_and_groups_runs() -> None:
    msgs = [Message("c", i, i, "normal", 0.0) for i in range(1, 6)]
    items: list[Message | str] = [msgs[0], msgs[1], '{"type":"ack","id":1}', *msgs[2:]]
    frames, reserved, count, batched, batches = plan_frames(items, BatchPlan(0.005, 2))
    decoded = [json.loads(f) for f in frames]
    assert [d["type"] for d in decoded] == ["batch", "ack", "batch", "message"]
    assert [m["offset"] for m in decoded[2]["messages"]] == [3, 4]
    assert (count, batched, batches) == (5, 4, 2)
    assert reserved == sum(len(protocol.message_frame(m)) for m in msgs) + len(items[2])  # type: ignore[arg-type]
    frames, _, count, batched, batches = plan_frames(msgs, BatchPlan(0.0, 64))
    assert [json.loads(f)["offset"] for f in frames] == [1, 2, 3, 4, 5]
    assert (count, batched, batches) == (5, 0, 0)


def test_websocket_frame_is_what_wsproto_sends_as_a_server() -> None:
    from wsproto.frame_protocol import FrameProtocol

    server = FrameProtocol(client=False, extensions=[])
    for size in (0, 1, 125, 126, 65535, 65536, 70000):
        text = "é" * (size // 2) + "x" * (size % 2)
        assert websocket_frame(text) == bytes(server.send_data(text, fin=True))


def test_frame_cache_shares_frames_between_identical_runs() -> None:
    msgs = [Message("c", i, {"n": i}, "normal", 0.0) for i in range(1, 5)]
    cache = FrameCache()
    first, *_ = plan_frames(msgs, BatchPlan(0.005, 64), cache)
    second, *_ = plan_frames(list(msgs), BatchPlan(0.005, 64), cache)
    assert first[0] is second[0] and (cache.hits, cache.misses) == (1, 1)
    plain, *_ = plan_frames(msgs, BatchPlan(0.005, 64))
    assert first == [websocket_frame(plain[0])]  # type: ignore[arg-type]
    other, *_ = plan_frames(msgs[1:], BatchPlan(0.005, 64), cache)
    assert other == [websocket_frame(encode(msgs[1:])[0])]
    assert (cache.hits, cache.misses) == (1, 2)
    lone, *_ = plan_frames(msgs[:1], BatchPlan(0.0, 64), cache)
    assert lone[0] is msgs[0].wire == websocket_frame(protocol.message_frame(msgs[0]))


def test_frame_cache_encodes_each_message_and_run_once() -> None:
    msgs = [Message("c", i, {"n": i}, "normal", 0.0) for i in range(1, 4)]
    cache = FrameCache()
    assert cache.message(msgs[0]) is cache.message(msgs[0])
    frames = [cache.batch(msgs) for _ in range(3)]
    assert frames[0] is frames[1] is frames[2]
    assert (cache.hits, cache.misses) == (2, 1)
