"""The trio side of one warm worker process: start it, pipeline jobs to it, read its frames.

A worker runs one job at a time, in the order it received them. The pool may *prefetch*: send
more jobs while one runs (see :mod:`perfgate.pool.prefetch`), so that the worker starts the next
the moment the current one is done
instead of idling through a round trip to the server (on a no-op that round trip is most of the
cost). Every ``run`` frame is answered by exactly one ``done`` frame, in order, so frames are
matched to jobs by position: :attr:`Worker.pending` is that FIFO, and its head is the job the
worker is running now.

:meth:`Worker.read_frames` is the worker's one reader task, and the only task per worker: an
attempt has no task of its own. The reader routes progress and log frames to the head, ends the
head on ``done``, and marks the next one started, all through the attempt's callbacks. It reads
inside the worker's *watch*, a cancel scope whose deadline is the running job's (timeout from
the moment the job starts) and which the pool cancels to cancel that job:
either way the worker's state is unknown, so the reader has it stopped and ends the head as
interrupted. When the worker dies it sees EOF at once, reaps the process, and fails every
pending attempt: the head with :class:`WorkerCrashed` (it was running), the others as not
started (they can simply be re-run).

Measured on a no-op job (bench/studies/pool_bench.py), a task and two cancel scopes per attempt, plus
the hops between the reader, that task and the dispatcher, were about half of the server's
CPU per job; this layout does the same work with none of them.
"""

from __future__ import annotations

import math
import os
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from perfgate.pool.framing import FrameDecoder, FrameError, encode_frame
from perfgate.pool.process import describe_exit, spawn_group, stop_group

WORKER_ARGV = (sys.executable, "-m", "perfgate.pool.worker_main")
_READ_BYTES = 1 << 16
_REAP_DEADLINE_S = 2.0


class WorkerCrashed(Exception):
    """The worker process died (or broke the protocol)."""

    def __init__(self, message: str, info: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.info = dict(info)


class Attempt:
    """One job sent to a worker; plain bookkeeping that the worker's reader reports on.

    ``on_start()`` is called when the worker begins the job and returns its deadline (trio
    clock); ``on_end(attempt)`` exactly once when it is over: ``done`` holds the worker's
    ``done`` frame, or ``interrupted`` is set (timed out or cancelled: the worker was stopped),
    or ``crash`` is set (the worker died; ``is_started`` says whether it was running this job).
    An *abandoned* attempt (taken back with :meth:`Worker.skip`) gets no more callbacks.
    """

    __slots__ = (
        "abandoned",
        "crash",
        "done",
        "ended",
        "expected_s",
        "interrupted",
        "is_started",
        "job_id",
        "on_end",
        "on_frame",
        "on_start",
    )

    def __init__(
        self,
        job_id: str,
        on_frame: Callable[[dict[str, Any]], None],
        on_start: Callable[[], float],
        on_end: Callable[[Attempt], None],
        expected_s: float = math.inf,
    ) -> None:
        self.job_id = job_id
        self.expected_s = expected_s  # how long the pool expects it to run
        self.on_frame = on_frame
        self.on_start = on_start
        self.on_end = on_end
        self.is_started = False
        self.ended = False
        self.abandoned = False
        self.interrupted = False
        self.done: dict[str, Any] | None = None
        self.crash: WorkerCrashed | None = None

    def _start(self) -> float:
        """Mark it started; its deadline (``inf`` if nobody waits for it any more)."""
        self.is_started = True
        return math.inf if self.abandoned else self.on_start()

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            if not self.abandoned:
                self.on_end(self)


class Worker:
    """One live worker process. Create with :meth:`start`, run :meth:`read_frames` in a
    nursery, and always finish with :meth:`stop`."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.pid = process.pid
        self.jobs_done = 0
        self.rss_bytes = 0
        self.idle_since = 0.0
        self.assigned = 0  # attempts the pool has given this worker and not yet settled
        self.retiring = False
        self.pending: deque[Attempt] = deque()
        self.exit_info: dict[str, Any] | None = None
        self._decoder = FrameDecoder()
        self._send_lock = trio.Lock()  # held by an async flush
        # The reader's scope: its deadline is the running job's; cancelling it gives up on
        # that job (the reader then has the worker stopped).
        self.watch = trio.CancelScope()
        self._outbox: deque[bytes] = deque()  # frames not yet written, in order
        assert isinstance(process.stdin, trio.lowlevel.FdStream)
        assert process.stdout is not None
        self._stdin = process.stdin
        self._stdin_fd = process.stdin.fileno()
        self._stdout = process.stdout

    @classmethod
    async def start(cls, argv: tuple[str, ...] = WORKER_ARGV) -> Worker:
        """Spawn a worker and wait for its ``ready`` frame.

        If cancelled, or if the worker fails to start, the process is stopped before this
        raises: nothing is left behind.
        """
        process = await spawn_group(argv)
        worker = cls(process)
        try:
            frames: list[dict[str, Any]] = []
            while not frames:
                data = await worker._stdout.receive_some(_READ_BYTES)
                if not data:
                    raise WorkerCrashed("worker exited during start-up", {})
                frames = worker._decoder.feed(data)
            if frames[0].get("ev") != "ready" or len(frames) > 1:
                raise WorkerCrashed("worker did not say ready", {"frame": frames[0]})
        except BaseException:
            await worker.stop(grace_s=0)
            raise
        return worker

    async def read_frames(
        self,
        on_exit: Callable[[Worker], None],
        *,
        on_interrupt: Callable[[Worker, Attempt | None], Awaitable[None]],
        after_frames: Callable[[], None],
    ) -> None:
        """The reader task: route frames until EOF, then fail what is pending, call ``on_exit``.

        ``after_frames()`` is called after each batch of frames has been routed (the pool
        dispatches there: a worker that just finished a job gets the next one without a hop
        through another task). If the watch fires (the running job's deadline passed, or
        the pool cancelled it), the head leaves the FIFO, ``await on_interrupt(worker, head)``
        stops the process (shielded), and the head ends as interrupted.

        Ends on its own once the process is gone (whoever stopped it). Cancellation (pool
        shutdown) also ends it; the pool stops the process separately.
        """
        crash: WorkerCrashed | None = None
        try:
            with self.watch:
                while True:
                    try:
                        data = await self._stdout.receive_some(_READ_BYTES)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        data = b""
                    if not data:
                        break
                    try:
                        messages = self._decoder.feed(data)
                    except FrameError as exc:
                        crash = WorkerCrashed(f"worker broke the protocol: {exc}", {})
                        break
                    for message in messages:
                        self._route(message)
                    after_frames()
            if self.watch.cancelled_caught:
                head = self.pending.popleft() if self.pending else None
                await on_interrupt(self, head)
                if head is not None:
                    head.interrupted = True
                    head._end()
            if crash is None:
                with trio.CancelScope(shield=True), trio.move_on_after(_REAP_DEADLINE_S):
                    await self.process.wait()
            # However it ended (crashed, broke the protocol, closed its stdout but kept running,
            # or was stopped): close its pipes now rather than whenever this object is
            # collected (a cycle can keep it for as long as the next full GC), and sweep its
            # group, where anything its task started would otherwise outlive it.
            await stop_group(self.process, grace_s=0)
            if crash is None:
                info = describe_exit(self.process.returncode or 0)
                crash = WorkerCrashed(f"worker {info['message']}", info)
            self.exit_info = crash.info
        finally:
            self._fail_pending(crash or WorkerCrashed("worker stopped", {"message": "stopped"}))
            on_exit(self)

    def _start_head(self) -> None:
        self.watch.deadline = self.pending[0]._start()

    def _route(self, message: dict[str, Any]) -> None:
        if not self.pending:
            return  # nothing is waiting for it: ignore rather than guess
        head = self.pending[0]
        if message.get("ev") != "done":
            if not head.abandoned:
                head.on_frame(message)
            return
        self.pending.popleft()
        if not message.get("skipped"):
            self.jobs_done += 1
            self.rss_bytes = int(message.get("rss_bytes", 0))
        head.done = message
        head._end()
        # The worker has already begun the next job (it was prefetched): its clock starts now.
        if self.pending:
            self._start_head()
        else:
            self.watch.deadline = math.inf

    def _fail_pending(self, crash: WorkerCrashed) -> None:
        while self.pending:
            attempt = self.pending.popleft()
            attempt.crash = crash
            attempt._end()

    def assign(
        self,
        job_id: str,
        target: str,
        args: Mapping[str, Any],
        *,
        expected_s: float = math.inf,
        on_frame: Callable[[dict[str, Any]], None],
        on_start: Callable[[], float],
        on_end: Callable[[Attempt], None],
    ) -> Attempt | None:
        """Queue a job on this worker, synchronously, and return its :class:`Attempt`; None
        if the worker is already gone.

        Synchronous so that the order in which the pool assigns jobs is exactly the order in
        which the worker runs them. The frame is only queued: :meth:`send_queued` writes what
        several assignments queued in one go. ``on_start`` is called here if the worker is
        idle; see :class:`Attempt` for the callbacks.
        """
        if self.exit_info is not None:
            return None
        attempt = Attempt(job_id, on_frame, on_start, on_end, expected_s)
        self._outbox.append(
            encode_frame({"op": "run", "job": job_id, "target": target, "args": args})
        )
        self.pending.append(attempt)
        if len(self.pending) == 1:
            self._start_head()
        return attempt

    def skip(self, attempt: Attempt) -> bool:
        """Take back a prefetched job: the worker answers it, in turn, as skipped (or, if it
        had already begun it, runs it; either way nobody is told). Returns :meth:`send_queued`."""
        attempt.abandoned = True
        self._outbox.append(encode_frame({"op": "skip", "job": attempt.job_id}))
        return self.send_queued()

    def send_queued(self) -> bool:
        """Write queued frames without blocking (one write for all of them), unless an async
        :meth:`flush` is under way (it will write them, in order). True if some are left for
        the caller to :meth:`flush`: the pipe was full."""
        if self._send_lock.locked():
            return False
        outbox = self._outbox
        while outbox:
            head = outbox.popleft() if len(outbox) == 1 else b"".join(outbox)
            outbox.clear()
            try:
                written = os.write(self._stdin_fd, head)
            except BlockingIOError:
                outbox.appendleft(head)
                return True
            except OSError:
                return False  # broken pipe: the reader sees EOF and fails the pending
            if written < len(head):
                outbox.appendleft(head[written:])
                return True
        return False

    async def flush(self) -> None:
        """Write whatever :meth:`send_queued` could not. Shielded: a half-written frame would
        corrupt the stream. It cannot stall for long: only small frames are prefetched, and
        an idle worker reads its pipe."""
        if not self._outbox:
            return
        with trio.CancelScope(shield=True):
            async with self._send_lock:
                while self._outbox:
                    chunk = self._outbox.popleft()
                    try:
                        await self._stdin.send_all(chunk)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        self._outbox.clear()

    async def stop(self, *, grace_s: float) -> None:
        """Stop the worker and its process group; see :func:`stop_group`. Shielded."""
        await stop_group(self.process, grace_s=grace_s)
