"""What the job service and the HTTP API need of a journal: SQLite (:class:`Journal`, the
embedded default) or Redis (:class:`perfgate.redis.journal.RedisJournal`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from perfgate.errors import PerfgateError
from perfgate.jobs.lifecycle import JobInput
from perfgate.snapshots import JournalSnapshot
from perfgate.store.record import JobRecord


class JobJournal(Protocol):
    async def create(
        self,
        record: JobRecord,
        *,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> tuple[JobRecord, bool]: ...
    async def create_many(
        self, jobs: Sequence[tuple[JobRecord, str | None, str | None]]
    ) -> list[tuple[JobRecord, bool] | PerfgateError]: ...
    async def get(self, job_id: str) -> JobRecord | None: ...
    async def mark_running(self, job_id: str) -> JobRecord | None: ...
    async def mark_retrying(self, job_id: str, *, error: Any) -> JobRecord | None: ...
    async def mark_finished(
        self,
        job_id: str,
        state: str,
        *,
        result: Any = None,
        error: Any = None,
        cached: bool = False,
    ) -> JobRecord | None: ...
    async def cancel(self, job_id: str) -> JobRecord | None: ...
    async def set_progress(
        self, job_id: str, fraction: float, message: str | None = None
    ) -> None: ...
    async def append_log(self, job_id: str, line: str, stream: str = "stdout") -> None: ...
    async def flush(self) -> None: ...
    async def recover(self) -> list[JobRecord]: ...
    async def scheduled(self) -> list[JobRecord]: ...
    async def apply(
        self,
        job_id: str,
        job_input: JobInput,
        *,
        result: Any = None,
        error: Any = None,
        cached: bool = False,
    ) -> JobRecord | None: ...
    async def list_jobs(
        self,
        state: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        tenant: str | None = None,
    ) -> tuple[list[JobRecord], str | None]: ...
    async def logs(
        self, job_id: str, *, after: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]: ...
    async def counts(self) -> dict[str, int]: ...
    def stats(self) -> JournalSnapshot: ...
