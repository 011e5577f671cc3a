"""The trio side of one warm worker process: start it, pipeline jobs to it, read its frames.

A worker runs one job at a time, in the order it received them. The pool may *prefetch*: send
a second job while the first runs, so that the worker starts it the moment the first is done
instead of idling through a round trip to the server (on a no-op that round trip is most of the
cost). Every ``run`` frame is answered by exactly one ``done`` frame, in order, so frames are
matched to jobs by position: :attr:`Worker.pending` is that FIFO, and its head is the job the
worker is running now.

:meth:`Worker.read_frames` is the worker's one reader task. It routes progress and log frames
to the head, completes the head on ``done``, and marks the next one started. When the worker
dies it sees EOF at once, reaps the process, and fails every pending attempt: the head with
:class:`WorkerCrashed` (it was running), the others as not started (they can simply be re-run).
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import trio

from perfgate.pool.process import describe_exit, spawn_group, stop_group
from perfgate.pool.protocol import FrameDecoder, ProtocolError, encode_frame

WORKER_ARGV = (sys.executable, "-m", "perfgate.pool.worker_main")
_READ_BYTES = 1 << 16
_REAP_DEADLINE_S = 2.0


class WorkerCrashed(Exception):
    """The worker process died (or broke the protocol)."""

    def __init__(self, message: str, info: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.info = dict(info)


class Attempt:
    """One job sent to a worker. ``started`` is set when the worker begins it (or it failed
    before starting); ``finished`` when its ``done`` frame arrived or the worker died."""

    def __init__(
        self,
        job_id: str,
        on_frame: Callable[[dict[str, Any]], None],
        on_start: Callable[[], None],
    ) -> None:
        self.job_id = job_id
        self.on_frame = on_frame
        self.on_start = on_start
        self.is_started = False
        self.started = trio.Event()
        self.finished = trio.Event()
        self.done: dict[str, Any] | None = None
        self.crash: WorkerCrashed | None = None

    def _start(self) -> None:
        self.is_started = True
        self.on_start()
        self.started.set()

    def _fail(self, crash: WorkerCrashed) -> None:
        self.crash = crash
        self.started.set()
        self.finished.set()


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

    async def read_frames(self, on_exit: Callable[[Worker], None]) -> None:
        """The reader task: route frames until EOF, then fail what is pending, call ``on_exit``.

        Ends on its own once the process is gone (whoever stopped it). Cancellation (pool
        shutdown) also ends it; the pool stops the process separately.
        """
        crash: WorkerCrashed | None = None
        try:
            while True:
                try:
                    data = await self._stdout.receive_some(_READ_BYTES)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if not data:
                    break
                try:
                    messages = self._decoder.feed(data)
                except ProtocolError as exc:
                    crash = WorkerCrashed(f"worker broke the protocol: {exc}", {})
                    break
                for message in messages:
                    self._route(message)
            if crash is not None:
                await stop_group(self.process, grace_s=0)
            else:
                with trio.CancelScope(shield=True), trio.move_on_after(_REAP_DEADLINE_S):
                    await self.process.wait()
            if self.process.returncode is None:  # closed its stdout but kept running
                await stop_group(self.process, grace_s=0)
            if crash is None:
                info = describe_exit(self.process.returncode or 0)
                crash = WorkerCrashed(f"worker {info['message']}", info)
            self.exit_info = crash.info
        finally:
            self._fail_pending(crash or WorkerCrashed("worker stopped", {"message": "stopped"}))
            on_exit(self)

    def _route(self, message: dict[str, Any]) -> None:
        if not self.pending:
            return  # nothing is waiting for it: ignore rather than guess
        head = self.pending[0]
        if message.get("ev") != "done":
            head.on_frame(message)
            return
        self.pending.popleft()
        if not message.get("skipped"):
            self.jobs_done += 1
            self.rss_bytes = int(message.get("rss_bytes", 0))
        head.done = message
        head.finished.set()
        if self.pending:
            self.pending[0]._start()

    def _fail_pending(self, crash: WorkerCrashed) -> None:
        while self.pending:
            self.pending.popleft()._fail(crash)

    def assign(
        self,
        job_id: str,
        target: str,
        args: Mapping[str, Any],
        *,
        on_frame: Callable[[dict[str, Any]], None],
        on_start: Callable[[], None],
    ) -> Attempt:
        """Queue a job on this worker, synchronously, and return its :class:`Attempt`.

        Synchronous so that the order in which the pool assigns jobs is exactly the order in
        which the worker runs them. The frame is written at once if the pipe takes it (it
        nearly always does); the caller then awaits :meth:`flush` for any remainder.
        ``on_start()`` is called synchronously when the worker begins the job (here, if it is
        idle), ``on_frame(message)`` for each of its progress/log frames. If the worker is
        already gone, the attempt fails as not started.
        """
        frame = encode_frame({"op": "run", "job": job_id, "target": target, "args": args})
        attempt = Attempt(job_id, on_frame, on_start)
        if self.exit_info is not None:
            attempt._fail(WorkerCrashed("worker is gone", self.exit_info))
            return attempt
        self.pending.append(attempt)
        self._outbox.append(frame)
        self._write_now()
        if len(self.pending) == 1:
            attempt._start()
        return attempt

    async def skip(self, job_id: str) -> None:
        """Ask the worker not to start a prefetched job (answered in turn as skipped)."""
        self._outbox.append(encode_frame({"op": "skip", "job": job_id}))
        self._write_now()
        await self.flush()

    def _write_now(self) -> None:
        """Write queued frames without blocking, unless an async :meth:`flush` is under way
        (it will write them, in order). Saves two trips through the scheduler per job."""
        if self._send_lock.locked():
            return
        while self._outbox:
            head = self._outbox[0]
            try:
                written = os.write(self._stdin_fd, head)
            except BlockingIOError:
                return
            except OSError:
                self._outbox.clear()  # broken pipe: the reader sees EOF and fails the pending
                return
            if written < len(head):
                self._outbox[0] = head[written:]
                return
            self._outbox.popleft()

    async def flush(self) -> None:
        """Write whatever :meth:`_write_now` could not. Shielded: a half-written frame would
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
