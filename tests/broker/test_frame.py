"""A channel message's one encoded form (perfgate.broker._frame): a WebSocket text frame a
standard client decodes to exactly the JSON object it stands for."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from perfgate.broker._frame import (
    batch_payload,
    encode_data,
    header_bytes,
    message_wire,
    websocket_frame,
)
from perfgate.errors import ValidationError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def client_reads(wire: bytes) -> str:
    """What a wsproto client makes of ``wire`` (it rejects a malformed or masked frame)."""
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(wire)
    events = list(client.events())
    assert len(events) == 1 and isinstance(events[0], TextMessage), events
    assert events[0].message_finished
    return events[0].data


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 0xFFFF, 0x10000, 70_000])
def test_frames_of_every_length_class_decode(size: int) -> None:
    payload = ("é" * (size // 2) + "x" * (size % 2)).encode()
    assert len(payload) == size
    wire = websocket_frame(payload)
    assert client_reads(wire) == payload.decode()
    assert len(wire) - header_bytes(wire) == size
    assert header_bytes(wire) == (2 if size <= 125 else 4 if size <= 0xFFFF else 10)


@settings(max_examples=60, deadline=None)
@given(channel=st.text(max_size=20), offset=st.integers(0, 2**53), data=json_values)
def test_message_wire_is_the_message_object_byte_for_byte(
    channel: str, offset: int, data: object
) -> None:
    wire = message_wire(channel, offset, encode_data(data))
    text = client_reads(wire)
    message = {"type": "message", "channel": channel, "offset": offset, "data": data}
    assert json.loads(text) == message
    assert text == json.dumps(message, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {"s": {1}}, "\ud800", b"bytes"])
def test_data_that_is_not_json_is_422(bad: object) -> None:
    with pytest.raises(ValidationError, match="not valid JSON"):
        encode_data(bad)


def test_a_batch_carries_the_messages_json_as_it_is() -> None:
    wires = [message_wire("c", n, encode_data({"n": n})) for n in (1, 2)]
    payloads = [memoryview(w)[header_bytes(w) :] for w in wires]
    batch = json.loads(batch_payload(payloads))
    assert batch == {
        "type": "batch",
        "messages": [
            {"type": "message", "channel": "c", "offset": n, "data": {"n": n}} for n in (1, 2)
        ],
    }
    assert json.loads(batch_payload([])) == {"type": "batch", "messages": []}
