"""The journal's writer: one task that commits queued writes in batches, one transaction each.

Why one writer fed by a channel, and why only promises pay for an fsync, is argued in
:mod:`perfgate.store._journal`, the async shell this serves; the SQL itself is
:mod:`perfgate.store._sql`.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable
from typing import Any, Final, TypeVar

import trio

from perfgate.errors import Unavailable
from perfgate.store import _sql
from perfgate.store.recent import RecentJobs, records_of

log = logging.getLogger("perfgate.store")

T = TypeVar("T")

#: Operations waiting for the writer. Full means the disk is behind: producers wait.
QUEUE_SIZE: Final = 4096
#: Operations per transaction, so one batch never holds the write lock for long.
BATCH_MAX: Final = 1024

CALL, LOG, PROGRESS = 0, 1, 2
#: What a call does to job records, for the recent-jobs cache: its result is the job(s) as
#: written; it changes no job; or it may change jobs in ways its result does not say.
RECORDS, NO_JOB, UNKNOWN = 0, 1, 2


class Op:
    """One queued write. ``done`` is set once its batch committed (or failed)."""

    __slots__ = ("done", "durable", "effect", "error", "fn", "kind", "payload", "result")

    def __init__(
        self,
        kind: int,
        *,
        fn: Callable[[sqlite3.Connection], Any] | None = None,
        payload: Any = None,
        effect: int = UNKNOWN,
        durable: bool = True,
    ) -> None:
        self.kind = kind
        self.fn = fn
        self.payload = payload
        self.effect = effect
        self.durable = durable and kind == CALL  # progress and log lines promise nothing
        self.done = trio.Event() if kind == CALL else None
        self.result: Any = None
        self.error: BaseException | None = None


class Writer:
    """The write connection and the task that commits what producers queue on ``send``."""

    def __init__(
        self,
        *,
        send: trio.MemorySendChannel[Op],
        conn: sqlite3.Connection,
        max_log_lines: int,
        recent: RecentJobs,
    ) -> None:
        self._send = send
        self.conn = conn
        self.max_log_lines = max_log_lines
        self._recent = recent
        #: The running writer's shielded scope: closing sets its deadline.
        self.scope: trio.CancelScope | None = None
        self.batches = 0
        self.ops = 0
        self.events_lost = 0
        self._failing = False  # the last batch failed (touched by the writer thread only)

    @property
    def queued(self) -> int:
        """Writes waiting for the writer."""
        return self._send.statistics().current_buffer_used

    async def enqueue(self, op: Op) -> None:
        try:
            await self._send.send(op)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise Unavailable("the journal is closed") from None

    async def call(
        self,
        fn: Callable[[sqlite3.Connection], T],
        effect: int = UNKNOWN,
        *,
        durable: bool = True,
    ) -> T:
        """Run ``fn`` on the write connection in the next batch; its result once committed.

        Cancellable only until the write is queued. Once queued it commits whatever the
        caller does (the writer never unqueues), so the caller waits for the outcome shielded:
        a submit cancelled here would otherwise leave a job committed and never queued until
        a restart recovered it. The wait is bounded by the writer, which sets ``done`` on
        every write it takes, committed, failed or left over when it closes.
        """
        op = Op(CALL, fn=fn, effect=effect, durable=durable)
        await self.enqueue(op)
        assert op.done is not None
        with trio.CancelScope(shield=True):
            await op.done.wait()
        if op.error is not None:
            raise op.error
        result: T = op.result
        return result

    async def run(
        self,
        receive: trio.MemoryReceiveChannel[Op],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Commit queued operations in batches until the channel closes.

        Shielded: shutdown closes the channel instead of cancelling, so that queued writes
        are not lost; closing sets a deadline on this scope to bound that.
        """
        with trio.CancelScope(shield=True) as scope:
            self.scope = scope
            task_status.started()
            try:
                while True:
                    try:
                        batch = [await receive.receive()]
                    except trio.EndOfChannel:
                        return
                    while len(batch) < BATCH_MAX:
                        try:
                            batch.append(receive.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    committed = False
                    try:
                        await trio.to_thread.run_sync(self._commit, batch)
                        committed = True
                    finally:
                        # Before anyone is woken: a caller told "done" reads what it wrote.
                        if committed:
                            self._file_recent(batch)
                        else:
                            self._recent.clear()
                        # Wake every waiter, even when the commit blew up: they may be in
                        # tasks outside our nursery that nothing else would wake.
                        for op in batch:
                            if op.done is not None:
                                if not committed and op.error is None:
                                    op.error = Unavailable("the journal writer failed")
                                op.done.set()
            finally:
                leftover = 0
                while True:
                    try:
                        op = receive.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    leftover += 1
                    if op.done is not None:
                        op.error = Unavailable("the journal closed before this write")
                        op.done.set()
                receive.close()
                if leftover:
                    log.warning("journal closed with %d writes not committed", leftover)

    def _file_recent(self, batch: list[Op]) -> None:
        """Keep the records a committed batch wrote, in its order (see the module doc)."""
        recent = self._recent
        for op in batch:
            if op.kind == PROGRESS:
                recent.forget(op.payload[0])  # its progress changed (or the job finished)
            elif op.kind == CALL and op.error is None:
                if op.effect == RECORDS:
                    for record in records_of(op.result):
                        recent.put(record)
                elif op.effect == UNKNOWN:
                    recent.clear()

    def _commit(self, batch: list[Op]) -> None:
        """Run one batch as one transaction (in a worker thread)."""
        conn = self.conn
        lines: list[tuple[str, str, str, float]] = []
        progress: dict[str, tuple[float, str | None]] = {}

        def flush_events() -> None:
            if progress:
                _sql.set_progress(conn, progress)
                progress.clear()
            if lines:
                _sql.append_logs(conn, lines, self.max_log_lines)
                lines.clear()

        fsync = any(op.durable for op in batch)
        try:
            if not fsync:
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            for op in batch:
                if op.kind == LOG:
                    lines.append(op.payload)
                elif op.kind == PROGRESS:
                    job_id, fraction, message = op.payload
                    progress[job_id] = (fraction, message)
                else:
                    assert op.fn is not None
                    flush_events()
                    conn.execute("SAVEPOINT op")
                    try:
                        op.result = op.fn(conn)
                    except Exception as exc:
                        conn.execute("ROLLBACK TO op")
                        op.error = exc
                    conn.execute("RELEASE op")
            flush_events()
            conn.execute("COMMIT")
            if not fsync:
                conn.execute("PRAGMA synchronous = FULL")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not fsync:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA synchronous = FULL")
            if not isinstance(exc, sqlite3.Error):
                raise  # a bug, not a disk problem: let it take the component down
            if not self._failing:  # once per outage: a full disk fails every batch, retried
                log.error("journal writes failing: %s (batch of %d writes)", exc, len(batch))
            self._failing = True
            for op in batch:
                if op.kind != CALL:
                    self.events_lost += 1
                elif op.error is None:
                    op.result = None
                    op.error = Unavailable(f"journal write failed: {exc}")
        else:
            if self._failing:
                log.warning("journal writes succeed again")
            self._failing = False
        self.batches += 1
        self.ops += len(batch)
