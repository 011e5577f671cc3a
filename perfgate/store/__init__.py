"""The job store: the durable journal (SQLite, WAL) and the job record.

``async with Journal.open(data_dir, max_log_lines=..., result_ttl_s=...) as journal`` is
the component (:class:`JobJournal` is the interface it shares with the Redis journal,
:mod:`perfgate.redis.journal`); :class:`JobRecord` is what it stores; :func:`body_fingerprint`
makes the idempotency fingerprint of a submit body.
"""

from perfgate.store._journal import Journal
from perfgate.store._protocol import JobJournal
from perfgate.store.fingerprint import body_fingerprint, canonical_json, digest
from perfgate.store.paging import decode_cursor, encode_cursor
from perfgate.store.record import (
    CANCELLED,
    DEAD,
    FAILED,
    FINISHED_STATES,
    PENDING_STATES,
    QUEUED,
    RETRYING,
    RUNNING,
    SCHEDULED,
    STATES,
    SUCCEEDED,
    JobRecord,
    iso_utc,
    new_job_id,
)
from perfgate.store.retention import sweep_period_s

__all__ = [
    "CANCELLED",
    "DEAD",
    "FAILED",
    "FINISHED_STATES",
    "PENDING_STATES",
    "QUEUED",
    "RETRYING",
    "RUNNING",
    "SCHEDULED",
    "STATES",
    "SUCCEEDED",
    "JobJournal",
    "JobRecord",
    "Journal",
    "body_fingerprint",
    "canonical_json",
    "decode_cursor",
    "digest",
    "encode_cursor",
    "iso_utc",
    "new_job_id",
    "sweep_period_s",
]
