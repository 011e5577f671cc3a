"""The durable job journal: SQLite in WAL mode behind a single writer task.

Why one writer task fed by a channel, rather than ``trio.to_thread`` per call:

* **Group commit.** Every state change must be durable before the caller goes on (a job is
  on disk before its 202 is sent), and a durable commit costs an fsync. The writer takes
  every operation waiting in its channel and commits them in one transaction, so N
  concurrent submits cost one fsync, not N, and a lone submit waits for no timer.
* **Only promises pay for an fsync.** A batch that holds nothing but a job's start
  (``running``), progress and log lines commits without an fsync (``synchronous=NORMAL`` for
  that one transaction): in WAL mode it still survives ``kill -9`` (it is in the log file; only
  a power loss can take it, and the next fsynced commit makes it durable too), and a job whose
  start was lost is simply run again by recovery, which is what happens to a running job
  anyway. Creates and final states (what a 202 or a published result promises) are fsynced.
* **Chatty events are cheap.** Progress and log lines are fire-and-forget: they are queued
  behind the state changes, coalesced (the latest progress per job wins) and written in the
  same batch. A task printing thousands of lines a second costs a few transactions a second.
* **Order.** One queue means one order: a job's log lines, queued before its final state,
  are committed no later than that state, so ``logs()`` after a finished ``get()`` is whole.
* **Backpressure.** The channel is bounded (:data:`perfgate.store._writer.QUEUE_SIZE`): when the disk cannot keep
  up, producers wait in ``send`` instead of memory growing.

Reads use a second connection (WAL lets readers run beside the writer), serialised by a
lock, each read in a worker thread. Reads see every committed write; a progress or log event
is visible once its batch commits (call :meth:`Journal.flush` to wait for that).

**Recent jobs from memory.** A job read (:meth:`Journal.get`) is answered without a query when
the writer has the job's record from a write it committed (:mod:`perfgate.store.recent`):
every create and transition returns the job as written, and the writer files those records
in commit order before it wakes anyone. That took a thread hop and a query off every
``GET /v1/jobs/{id}`` and long-poll of a live job. Only this process writes the file (the
data-dir lock), so nothing else can change a job behind the cache's back; a write whose
effect on jobs the writer cannot vouch for empties it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import trio

from perfgate.errors import PerfgateError, Unavailable, ValidationError
from perfgate.jobs.lifecycle import JobInput
from perfgate.snapshots import JournalSnapshot
from perfgate.store import _sql, paging, retention
from perfgate.store._writer import LOG, NO_JOB, PROGRESS, QUEUE_SIZE, RECORDS, Op, Writer
from perfgate.store.recent import RecentJobs
from perfgate.store.record import STATES, JobRecord, transition_write
from perfgate.store.shortcuts import TransitionShortcuts, progress_value

log = logging.getLogger("perfgate.store")

T = TypeVar("T")

#: How long closing the journal may spend committing what is still queued.
CLOSE_TIMEOUT_S: Final = 5.0
MAX_PAGE: Final = 1000


class Journal(TransitionShortcuts):
    """The job journal. Open it with ``async with Journal.open(data_dir, ...) as journal``.

    Writes (``create``, the ``mark_*`` transitions, ``sweep``, ``recover``) return once the
    change is committed. They are not cancellation-atomic: a caller cancelled while waiting
    may or may not have had its write committed (re-submitting with the same idempotency key
    yields the same job either way). Reads are checkpoints that cannot be cancelled while
    their short query runs.
    """

    def __init__(
        self,
        *,
        writer: Writer,
        read_conn: sqlite3.Connection,
        max_log_lines: int,
        result_ttl_s: float,
        clock: Callable[[], float],
        recent: RecentJobs,
    ) -> None:
        self._writer = writer
        self._read_conn = read_conn
        self._read_lock = trio.Lock()
        self.max_log_lines = max_log_lines
        self.result_ttl_s = result_ttl_s
        self._clock = clock
        self._closed = False
        self._recent = recent

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        data_dir: Path,
        *,
        max_log_lines: int,
        result_ttl_s: float,
        clock: Callable[[], float] = time.time,
        sweep: bool = True,
    ) -> AsyncIterator[Journal]:
        """Open (creating if needed) ``data_dir/journal.sqlite3`` and start the writer and,
        unless ``sweep=False``, the retention sweeper (see :meth:`run_sweeper`).

        ``clock`` gives the wall-clock timestamps (epoch seconds) the journal records.
        On exit, queued writes are committed (for at most :data:`CLOSE_TIMEOUT_S`, even when
        the exit is a cancellation), then the connections are closed.
        """
        if max_log_lines < 1 or result_ttl_s <= 0:
            raise ValueError("max_log_lines must be >= 1 and result_ttl_s > 0")
        await trio.to_thread.run_sync(
            functools.partial(data_dir.mkdir, parents=True, exist_ok=True)
        )
        write_conn = await trio.to_thread.run_sync(_sql.connect, data_dir)
        try:
            read_conn = await trio.to_thread.run_sync(
                functools.partial(_sql.connect, data_dir, readonly=True)
            )
            try:
                send, receive = trio.open_memory_channel[Op](QUEUE_SIZE)
                recent = RecentJobs(result_ttl_s)
                writer = Writer(
                    send=send, conn=write_conn, max_log_lines=max_log_lines, recent=recent
                )
                journal = cls(
                    writer=writer,
                    read_conn=read_conn,
                    max_log_lines=max_log_lines,
                    result_ttl_s=result_ttl_s,
                    clock=clock,
                    recent=recent,
                )
                async with trio.open_nursery() as nursery:
                    await nursery.start(writer.run, receive)
                    if sweep:
                        await nursery.start(journal.run_sweeper)
                    try:
                        yield journal
                    finally:
                        journal._closed = True
                        # The sweeper stops; the writer is shielded and drains what is
                        # queued, within its own deadline, then sees the channel close.
                        nursery.cancel_scope.cancel()
                        send.close()
                        assert writer.scope is not None
                        writer.scope.deadline = trio.current_time() + CLOSE_TIMEOUT_S
            finally:
                read_conn.close()
        finally:
            # Blocking, but brief (a WAL checkpoint at most), and it must happen even when
            # we are being cancelled, which rules out awaiting a thread here.
            write_conn.close()

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        async with self._read_lock:
            if self._closed:
                raise Unavailable("the journal is closed")
            return await trio.to_thread.run_sync(fn, self._read_conn)

    # -- writes -----------------------------------------------------------------------------

    async def create(
        self,
        record: JobRecord,
        *,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """Store a new job; return it and ``True`` once it is durable.

        With an ``idempotency_key`` already used by the record's tenant (keys are per tenant),
        nothing is written: the earlier job is returned with ``False`` when ``fingerprint``
        matches the earlier one, and :class:`~perfgate.errors.Conflict` is raised when it does
        not. A key is free again once the retention sweep deleted its job.
        """
        if record.state not in STATES:
            raise ValidationError(f"unknown job state {record.state!r}")
        return await self._writer.call(
            functools.partial(
                _sql.insert,
                record=record,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
            ),
            RECORDS,
        )

    async def create_many(
        self, jobs: Sequence[tuple[JobRecord, str | None, str | None]]
    ) -> list[tuple[JobRecord, bool] | PerfgateError]:
        """Store several jobs ``(record, idempotency_key, fingerprint)`` in one transaction
        (one commit, one fsync); answer per job, in order, as :meth:`create` would: the job
        and whether it was created, or the :class:`~perfgate.errors.PerfgateError` that job
        alone met (an idempotency conflict): one job's error never undoes the others.
        A key used twice within ``jobs`` behaves as two submits in that order."""
        for record, _key, _fingerprint in jobs:
            if record.state not in STATES:
                raise ValidationError(f"unknown job state {record.state!r}")
        if not jobs:
            return []
        return await self._writer.call(
            functools.partial(_sql.insert_many, jobs=list(jobs)), RECORDS
        )

    async def apply(
        self,
        job_id: str,
        job_input: JobInput,
        *,
        result: Any = None,
        error: Any = None,
        cached: bool = False,
    ) -> JobRecord | None:
        """Apply one transition of the lifecycle table: the one place this journal changes a
        job's state (every ``mark_*`` comes here).

        Returns the updated job, ``None`` when the table refuses ``job_input`` in the job's
        current state (e.g. it was cancelled meanwhile: the first final state wins), and
        raises :class:`~perfgate.errors.NotFound` for an unknown job.
        """
        write = transition_write(
            job_input, result=result, error=error, cached=cached, now=self._clock()
        )
        return await self._writer.call(
            functools.partial(_sql.transition, job_id=job_id, write=write),
            RECORDS,
            # A start promises nothing: lost, the job runs again (see the module doc).
            durable=job_input != JobInput.START,
        )

    async def set_progress(self, job_id: str, fraction: float, message: str | None = None) -> None:
        """Record a running job's progress (fire-and-forget, batched; waits only when the
        writer is behind). Ignored once the job is no longer running."""
        fraction, text = progress_value(fraction, message)
        await self._writer.enqueue(Op(PROGRESS, payload=(str(job_id), fraction, text)))

    async def append_log(self, job_id: str, line: str, stream: str = "stdout") -> None:
        """Append one log line (fire-and-forget, batched; waits only when the writer is
        behind). The job keeps its last ``max_log_lines`` lines (see
        :mod:`perfgate.store.retention`); lines are cut at 8 KiB."""
        payload = (str(job_id), str(stream), str(line), self._clock())
        await self._writer.enqueue(Op(LOG, payload=payload))

    async def flush(self) -> None:
        """Wait until every write queued before this call is committed."""
        await self._writer.call(lambda _conn: None, NO_JOB)

    async def recover(self) -> list[JobRecord]:
        """Re-queue the jobs that were queued, running or retrying when the process stopped,
        and return them (oldest first) for the service to submit again.

        Call it once at start-up, before accepting work: it re-queues *every* unfinished job.
        Delivery is at-least-once: a job that was running is run again, and its ``attempts``
        grows by one more when it starts.
        """
        return await self._writer.call(_sql.requeue_pending)

    async def scheduled(self) -> list[JobRecord]:
        """The jobs waiting for their ``run_at``, soonest first: the service re-arms them at
        start-up (they stay ``scheduled``: none runs before it is due)."""
        return await self._read(_sql.scheduled_jobs)

    async def sweep(self, now: float) -> int:
        """Delete jobs (and their logs) finished more than ``result_ttl_s`` before ``now``;
        return how many. Works in chunks so other writes interleave."""
        cutoff = now - self.result_ttl_s
        total = 0
        while True:
            deleted = await self._writer.call(
                functools.partial(
                    _sql.sweep_chunk, finished_before=cutoff, chunk=retention.SWEEP_CHUNK
                )
            )
            total += deleted
            if deleted < retention.SWEEP_CHUNK:
                return total

    async def run_sweeper(
        self,
        *,
        period_s: float | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Sweep every ``period_s`` (default: :func:`retention.sweep_period_s` of the TTL)
        until cancelled. A failed sweep is logged and retried next period.
        :meth:`open` starts one unless given ``sweep=False``."""
        period = retention.sweep_period_s(self.result_ttl_s) if period_s is None else period_s
        task_status.started()
        while True:
            await trio.sleep(period)
            try:
                deleted = await self.sweep(self._clock())
            except (Unavailable, sqlite3.Error) as exc:
                log.warning("journal sweep failed: %s", exc)
                continue
            if deleted:
                log.info("journal sweep deleted %d finished jobs", deleted)

    # -- reads ------------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobRecord | None:
        """The job as last committed: from memory when the writer has it, else a query."""
        recent = self._recent.get(job_id, self._clock())
        if recent is None:
            return await self._read(functools.partial(_sql.get, job_id=job_id))
        if self._closed:
            raise Unavailable("the journal is closed")
        await trio.lowlevel.checkpoint()
        return recent

    async def list_jobs(
        self,
        state: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        tenant: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        """A page of jobs (of ``tenant`` only, unless ``None``), newest first by
        ``(created_at, id)``, and the cursor of the next page (``None`` on the last page).
        Stable while jobs are added: a job is never shown twice across pages. Raises :class:`~perfgate.errors.ValidationError` for an unknown
        state or a limit outside 1..1000, :class:`~perfgate.errors.BadRequest` for a cursor
        this journal did not issue."""
        if state is not None and state not in STATES:
            raise ValidationError(f"unknown state {state!r}; one of {', '.join(sorted(STATES))}")
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE}")
        before = None if cursor is None else paging.decode_cursor(cursor)
        jobs, more = await self._read(
            functools.partial(
                _sql.list_page, state=state, limit=limit, before=before, tenant=tenant
            )
        )
        next_cursor = paging.encode_cursor(jobs[-1].created_at, jobs[-1].id) if more else None
        return jobs, next_cursor

    async def logs(self, job_id: str, *, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Log lines with ``seq > after``, oldest first: ``{"seq", "ts", "stream", "line"}``.
        ``seq`` numbers a job's lines from 1; a first ``seq`` above 1 means older lines were
        dropped by the cap. Raises ValidationError for a negative ``after`` or a bad limit."""
        if after < 0 or not 1 <= limit <= 10 * MAX_PAGE:
            raise ValidationError("after must be >= 0 and limit between 1 and 10000")
        return await self._read(
            functools.partial(_sql.logs, job_id=job_id, after=after, limit=limit)
        )

    async def counts(self) -> dict[str, int]:
        """Jobs per state, every state present (0 when none)."""
        found = await self._read(_sql.count)
        return {state: found.get(state, 0) for state in sorted(STATES)}

    def stats(self) -> JournalSnapshot:
        """Writer counters for the monitor."""
        return JournalSnapshot(
            write_queue=self._writer.queued,
            batches=self._writer.batches,
            ops=self._writer.ops,
            events_lost=self._writer.events_lost,
            recent_jobs=len(self._recent),
        )

    async def journal_mode(self) -> str:
        return await self._read(_sql.journal_mode)

    async def synchronous(self) -> str:
        """The ``synchronous`` setting the writer commits with (``FULL``: every commit is
        fsynced before the caller is answered). Read on the write connection, through the
        writer, since the setting is per connection."""
        return await self._writer.call(_sql.synchronous, NO_JOB)
