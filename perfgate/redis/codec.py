"""What perfgate writes into Redis and reads back: channel payloads, job hashes, log lines.

Pure: no I/O, no trio. See docs/architecture.md §6.

Channel payload (pub/sub and the history stream's field ``m``): ``"OFFSET PRIORITY
PUBLISHED_AT JSON"`` (space-separated; the JSON is last and may contain spaces).
``PUBLISHED_AT`` is wall-clock epoch seconds, shared across instances.

Job hash: fields ``state``, ``attempts``, ``ix``, ``log_seq``, ``owner``, ``qstream``,
``qentry``, ``idem``, ``tenant`` are raw strings (:data:`RAW_FIELDS`: the scripts read them);
every other field is JSON text (:func:`encode_fields`). A log entry is ``"SEQ\\tJSON"``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from perfgate.broker._frame import encode_data as encode_data
from perfgate.broker._history import Message
from perfgate.config import DEFAULT_TENANT
from perfgate.redis.keys import index_member
from perfgate.store.record import JobRecord

# -- channel payloads ------------------------------------------------------------------------

_JSON_STARTS = frozenset('{["-0123456789tfn')


def decode_payload(channel: str, payload: str) -> Message:
    """A payload back into a :class:`Message`; raises ValueError if malformed.

    The JSON is framed as it is, not parsed and encoded again: it was encoded by
    :func:`encode_data` at publish (its first character is checked, cheaply, so that a
    stray payload on our channels cannot break a frame's structure)."""
    offset, priority, published_at, body = payload.split(" ", 3)
    if not body or body[0] not in _JSON_STARTS:
        raise ValueError("payload data is not JSON")
    return Message.from_json(channel, int(offset), body, priority, float(published_at))


def decode_entries(channel: str, entries: Sequence[Any]) -> list[Message]:
    """``XRANGE`` entries (``[id, [field, value, ...]]``) into messages, oldest first."""
    messages = []
    for _entry_id, fields in entries:
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        messages.append(decode_payload(channel, values["m"]))
    return messages


# -- job hashes ------------------------------------------------------------------------------

#: Raw (not JSON) hash fields.
RAW_FIELDS: Final = frozenset(
    {"state", "attempts", "ix", "log_seq", "owner", "qstream", "qentry", "idem", "tenant"}
)
_JSON_FIELDS: Final = (
    "task",
    "args",
    "priority",
    "progress",
    "progress_message",
    "result",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "idempotency_key",
    "fingerprint",
    "timeout_s",
    "max_retries",
    "cached",
    "run_at",
)
#: A log line longer than this is cut (as the SQLite journal does).
MAX_LINE_CHARS: Final = 8192


def encode_fields(record: JobRecord) -> list[str]:
    """The hash of a new job, as a flat ``[field, value, ...]`` list."""
    values = {
        "task": record.task,
        "args": record.args,
        "priority": record.priority,
        "progress": record.progress,
        "progress_message": record.progress_message,
        "result": record.result,
        "error": record.error,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "idempotency_key": record.idempotency_key,
        "fingerprint": record.fingerprint,
        "timeout_s": record.timeout_s,
        "max_retries": record.max_retries,
        "cached": record.cached,
        "run_at": record.run_at,
    }
    flat = ["state", record.state, "attempts", str(record.attempts)]
    flat += ["ix", index_member(record.created_at, record.id), "log_seq", "0"]
    flat += ["tenant", record.tenant]
    for name in _JSON_FIELDS:
        flat += [name, dumps(values[name])]
    return flat


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)


def pairs(reply: Sequence[Any]) -> dict[str, str]:
    """A Lua ``HGETALL`` reply (flat list) as a dict."""
    return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}


def decode_record(job_id: str, fields: dict[str, str]) -> JobRecord:
    """The record a job hash holds (raises ValueError if it is not one)."""
    try:
        value = {name: json.loads(fields[name]) for name in _JSON_FIELDS if name in fields}
        return JobRecord(
            id=job_id,
            task=value["task"],
            args=value["args"],
            state=fields["state"],
            priority=value["priority"],
            attempts=int(fields["attempts"]),
            progress=float(value["progress"]),
            progress_message=value.get("progress_message"),
            result=value.get("result"),
            error=value.get("error"),
            created_at=float(value["created_at"]),
            started_at=value.get("started_at"),
            finished_at=value.get("finished_at"),
            idempotency_key=value.get("idempotency_key"),
            fingerprint=value.get("fingerprint"),
            timeout_s=value.get("timeout_s"),
            max_retries=int(value.get("max_retries") or 0),
            cached=bool(value.get("cached")),
            tenant=fields.get("tenant") or DEFAULT_TENANT,
            run_at=value.get("run_at"),
        )
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"job {job_id}: malformed hash ({exc})") from None


# -- log lines -------------------------------------------------------------------------------


def encode_log(ts: float, stream: str, line: str) -> str:
    return dumps({"ts": ts, "stream": stream, "line": line[:MAX_LINE_CHARS]})


def decode_logs(entries: Sequence[str], *, after: int, limit: int) -> list[dict[str, Any]]:
    """``"SEQ\\tJSON"`` entries → ``{"seq", "ts", "stream", "line"}`` with ``seq > after``."""
    lines: list[dict[str, Any]] = []
    for entry in entries:
        seq_text, _, body = str(entry).partition("\t")
        seq = int(seq_text)
        if seq <= after:
            continue
        lines.append({"seq": seq, **json.loads(body)})
        if len(lines) >= limit:
            break
    return lines
