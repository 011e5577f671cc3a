"""What the Redis backend stores (pure: perfgate.redis.codec)."""

import pytest

from perfgate.redis.codec import (
    decode_entries,
    decode_logs,
    decode_payload,
    decode_record,
    encode_fields,
    encode_log,
    pairs,
)
from perfgate.store import JobRecord


def test_payload_round_trip() -> None:
    message = decode_payload("c", '7 high 12.5 {"a": "x y", "b": [1]}')
    assert (message.channel, message.offset, message.priority) == ("c", 7, "high")
    assert message.published_at == 12.5 and message.data == {"a": "x y", "b": [1]}
    entries = [["3-0", ["m", '3 normal 1.0 "s"']], ["4-0", ["m", "4 low 2.0 null"]]]
    assert [(m.offset, m.data) for m in decode_entries("c", entries)] == [(3, "s"), (4, None)]
    with pytest.raises(ValueError):
        decode_payload("c", "garbage")


def test_job_record_round_trip() -> None:
    record = JobRecord(
        id="j1", task="echo", args={"a": [1, "x y"]}, state="queued", priority="high",
        created_at=12.5, tenant="acme", run_at=20.0, max_retries=2,
    )  # fmt: skip
    fields = pairs(encode_fields(record))
    assert fields["state"] == "queued" and fields["tenant"] == "acme"
    assert decode_record("j1", fields) == record
    with pytest.raises(ValueError, match="j1"):
        decode_record("j1", {"state": "queued"})


def test_log_entries_after_a_sequence() -> None:
    entries = [f"{seq}\t{encode_log(float(seq), 'stdout', f'line {seq}')}" for seq in (1, 2, 3)]
    lines = decode_logs(entries, after=1, limit=1)
    assert lines == [{"seq": 2, "ts": 2.0, "stream": "stdout", "line": "line 2"}]
