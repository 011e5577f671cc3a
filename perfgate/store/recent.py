"""The jobs a journal wrote last, as it committed them: reads without a query. Pure.

The SQLite journal's writer task puts every record a committed write returned here, in commit
order, before it wakes the writers' callers; so a read from here is the state the journal
holds (or the one it held a moment before a commit nobody has been told about yet), never an
older one. What the writer cannot vouch for (a failed batch, a write whose result is not the
job it changed, the retention sweep) empties the cache or drops the job instead.

Bounded by count (:data:`MAX_JOBS`) and per record (:data:`RECORD_MAX_BYTES`, estimated
without encoding): a job with large arguments or a large result is simply read from disk.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

from perfgate.store.record import JobRecord

MAX_JOBS: Final = 1024
RECORD_MAX_BYTES: Final = 16 * 1024


def approx_json_bytes(value: Any, limit: int) -> int:
    """About how many bytes ``value`` takes as JSON, counted no further than past ``limit``
    (so a huge value costs no more to measure than a small one)."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            if total > limit:
                return total
            for key, child in item.items():
                total += len(str(key))
                stack.append(child)
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            if total > limit:
                return total
            stack.extend(item)
        else:
            total += 8
        if total > limit:
            return total
    return total


def records_of(result: Any) -> list[JobRecord]:
    """The job records in a journal write's result: a record, ``(record, created)``, or a list
    of those and per-item errors; ``None`` (a refused transition) holds none."""
    if isinstance(result, JobRecord):
        return [result]
    if isinstance(result, tuple) and result and isinstance(result[0], JobRecord):
        return [result[0]]
    if isinstance(result, list):
        return [record for item in result for record in records_of(item)]
    return []


class RecentJobs:
    """At most ``max_jobs`` records, the most recently written kept; finished ones only
    while their retention (``ttl_s`` after ``finished_at``) lasts, when the sweep may delete
    them."""

    def __init__(
        self, ttl_s: float, *, max_jobs: int = MAX_JOBS, record_max_bytes: int = RECORD_MAX_BYTES
    ) -> None:
        self.ttl_s = ttl_s
        self.max_jobs = max_jobs
        self.record_max_bytes = record_max_bytes
        self._jobs: OrderedDict[str, JobRecord] = OrderedDict()

    def put(self, record: JobRecord) -> None:
        """``record`` is the job as just committed."""
        budget = self.record_max_bytes
        size = approx_json_bytes(record.args, budget)
        if size <= budget:
            size += approx_json_bytes(record.result, budget - size)
        if size <= budget:
            size += approx_json_bytes(record.error, budget - size)
        if size > budget or self.max_jobs <= 0:
            self._jobs.pop(record.id, None)  # too big to keep: the journal answers
            return
        self._jobs[record.id] = record
        self._jobs.move_to_end(record.id)
        while len(self._jobs) > self.max_jobs:
            self._jobs.popitem(last=False)

    def get(self, job_id: str, now: float) -> JobRecord | None:
        record = self._jobs.get(job_id)
        if record is None:
            return None
        if record.finished_at is not None and record.finished_at + self.ttl_s <= now:
            del self._jobs[job_id]  # past retention: the journal decides (it may be swept)
            return None
        return record

    def forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def clear(self) -> None:
        self._jobs.clear()

    def __len__(self) -> int:
        return len(self._jobs)
