"""Parsing client frames and building server frames (perfgate.gateway.protocol)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfgate.errors import ValidationError
from perfgate.gateway import protocol

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
