"""Pure pieces: protocol parsing, channel names, byte budget, batching, limits, drain plan."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfgate.auth import Principal
from perfgate.broker import Message
from perfgate.errors import Forbidden, ValidationError
from perfgate.gateway import channels, protocol
from perfgate.gateway.limits import drain_schedule
from perfgate.gateway.outbox import (
    BatchPlan,
    ByteBudget,
    FrameCache,
    encode,
    plan_frames,
    websocket_frame,
)


def test_parse_ops() -> None:
    assert protocol.parse('{"op":"ping","id":7}') == protocol.Ping(7)
    assert protocol.parse('{"op":"subscribe","id":"a","channel":"c","since":3,"epoch":"e"}') == (
        protocol.Subscribe("a", "c", 3, "e")
    )
    assert protocol.parse('{"op":"unsubscribe","channel":"c"}') == protocol.Unsubscribe(None, "c")
    assert protocol.parse('{"op":"publish","channel":"c","data":null,"priority":"high"}') == (
        protocol.Publish(None, "c", None, "high")
    )
    assert protocol.parse('{"op":"publish","channel":"c","data":[1]}') == (
        protocol.Publish(None, "c", [1], "normal")
    )


@pytest.mark.parametrize(
    ("frame", "code", "rid"),
    [
        ("{nope", "bad_request", None),
        ("[1,2]", "bad_request", None),
        ('{"id":1}', "bad_request", 1),
        ('{"op":"fly","id":2}', "unknown_op", 2),
        ('{"op":"ping","id":[1]}', "bad_request", None),
        ('{"op":"subscribe","id":3,"channel":"c","since":-1}', "invalid", 3),
        ('{"op":"subscribe","id":3,"channel":"c","since":true}', "invalid", 3),
        ('{"op":"publish","id":4,"channel":"c"}', "invalid", 4),
        ('{"op":"publish","id":4,"channel":"c","data":1,"priority":"urgent"}', "invalid", 4),
        (b"\x00binary", "bad_request", None),
    ],
)
def test_parse_errors_carry_the_id(frame: str | bytes, code: str, rid: object) -> None:
    result = protocol.parse(frame)
    assert isinstance(result, protocol.BadFrame)
    assert (result.code, result.id) == (code, rid)


_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4)
_frame_objects = st.fixed_dictionaries(
    # "op": None stands for a frame without one (parse reads both the same way).
    {"op": st.sampled_from(["ping", "subscribe", "unsubscribe", "publish", "nope"]) | _scalars},
    optional={
        "id": _scalars | st.text(min_size=129, max_size=130),
        "channel": _scalars,
        "data": _scalars,
        "since": _scalars,
        "epoch": _scalars,
        "priority": st.sampled_from(["high", "normal", "low", "urgent"]) | _scalars,
    },
)
_OPS = {
    "ping": protocol.Ping,
    "subscribe": protocol.Subscribe,
    "unsubscribe": protocol.Unsubscribe,
    "publish": protocol.Publish,
}


@settings(max_examples=500)
@given(st.text(max_size=200) | st.builds(json.dumps, _frame_objects))
def test_parse_never_raises_and_answers_each_frame_for_what_it_is(text: str) -> None:
    result = protocol.parse(text)
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        assert result == protocol.BadFrame(None, "bad_request", result.message)
        return
    rid = obj.get("id")
    good_id = rid is None or (type(rid) in (int, str) and len(str(rid)) <= 128)
    if not good_id:
        assert result == protocol.BadFrame(None, "bad_request", result.message)
        assert result.message.startswith("id")
        return
    op = obj.get("op")
    if isinstance(result, protocol.BadFrame):
        # A frame with a readable id is always answered with that id.
        assert result.id == rid
        assert result.code in ("bad_request", "invalid", "unknown_op") and result.message
        if op is None:
            assert result.code == "bad_request"
        elif op not in _OPS:
            assert result.code == "unknown_op"
        else:
            assert op in ("subscribe", "publish") and result.code == "invalid"
        return
    assert type(op) is str and type(result) is _OPS[op]
    assert result.id == rid
    if not isinstance(result, protocol.Ping):
        assert result.channel == obj.get("channel")
    if isinstance(result, protocol.Subscribe):
        assert (result.since, result.epoch) == (obj.get("since"), obj.get("epoch"))
        assert result.since is None or (type(result.since) is int and result.since >= 0)
        assert result.epoch is None or type(result.epoch) is str
    if isinstance(result, protocol.Publish):
        assert result.data == obj["data"]
        assert result.priority == obj.get("priority", "normal")


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


def test_channel_names() -> None:
    assert channels.check_name("room:42/chat") == "room:42/chat"
    assert channels.check_name("$sys:metrics") == "$sys:metrics"
    for bad in ["", "a b", "x" * 129, "$other", 7, None, "é"]:
        with pytest.raises(ValidationError):
            channels.check_name(bad)


def test_channel_permissions() -> None:
    sub = Principal("s", frozenset({"subscribe"}))
    pub = Principal("p", frozenset({"subscribe", "publish"}))
    admin = Principal("a", frozenset({"admin"}))
    assert channels.check_subscribe(sub, "jobs:1") == "jobs:1"
    with pytest.raises(Forbidden):
        channels.check_subscribe(sub, "$sys:x")
    assert channels.check_subscribe(admin, "$sys:x") == "$sys:x"
    with pytest.raises(Forbidden):
        channels.check_client_publish(sub, "room")
    with pytest.raises(Forbidden):
        channels.check_client_publish(pub, "jobs:1")
    with pytest.raises(Forbidden):
        channels.check_client_publish(admin, "jobs:1")
    with pytest.raises(Forbidden):
        channels.check_client_publish(pub, "$sys:x")
    assert channels.check_publish(None, "jobs:1") == "jobs:1"
    with pytest.raises(Forbidden):
        channels.check_publish(pub, "jobs:1")


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


@given(n=st.integers(0, 20000), window=st.floats(0.0, 120.0))
def test_drain_schedule_closes_everyone_within_the_window(n: int, window: float) -> None:
    plan = drain_schedule(n, window)
    assert sum(count for _, count in plan) == n
    offsets = [offset for offset, _ in plan]
    assert offsets == sorted(offsets)
    assert all(0 <= offset <= window * 0.8 + 1e-9 for offset in offsets)
    if len(plan) > 1:
        assert offsets[1] - offsets[0] >= 0.05 - 1e-9


def test_drain_schedule_spreads_batches() -> None:
    plan = drain_schedule(1000, 10.0)
    assert len(plan) > 10
    assert max(count for _, count in plan) < 100


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


def test_submit_frame_carries_the_body_without_op_and_id() -> None:
    op = protocol.parse('{"op": "submit", "id": 3, "task": "echo", "args": {"x": 1}}')
    assert op == protocol.Submit(3, {"task": "echo", "args": {"x": 1}})
    bad = protocol.parse('{"op": "submit", "id": true, "task": "echo"}')
    assert isinstance(bad, protocol.BadFrame) and bad.code == "bad_request"


def test_error_frames_carry_the_field_errors_of_the_http_problem() -> None:
    exc = ValidationError("task: required", errors=[{"field": "task", "message": "required"}])
    frame = json.loads(protocol.error_from(5, exc))
    assert frame == {
        "type": "error",
        "id": 5,
        "code": "invalid",
        "message": "task: required",
        "errors": [{"field": "task", "message": "required"}],
    }


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


def test_frame_cache_encodes_each_message_and_run_once() -> None:
    msgs = [Message("c", i, {"n": i}, "normal", 0.0) for i in range(1, 4)]
    cache = FrameCache()
    assert cache.message(msgs[0]) is cache.message(msgs[0])
    frames = [cache.batch(msgs) for _ in range(3)]
    assert frames[0] is frames[1] is frames[2]
    assert (cache.hits, cache.misses) == (2, 1)
