"""The trio side of one warm worker process: start it, run a job on it, stop it.

A :class:`Worker` is used by one job at a time (the pool guarantees it). There is no reader
task: :meth:`Worker.run` reads the worker's frames itself until the job's ``done`` frame, and
between jobs a worker sends nothing. A worker that dies mid-job shows up at once as EOF on
its stdout pipe; :meth:`run` then reaps it and raises :class:`WorkerCrashed`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import trio

from perfgate.pool.process import describe_exit, spawn_group, stop_group
from perfgate.pool.protocol import FrameDecoder, ProtocolError, encode_frame

WORKER_ARGV = (sys.executable, "-m", "perfgate.pool.worker_main")
_READ_BYTES = 1 << 16
_REAP_DEADLINE_S = 2.0


class WorkerCrashed(Exception):
    """The worker process died (or broke the protocol) while it held a job."""

    def __init__(self, message: str, info: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.info = dict(info)


class Worker:
    """One live worker process. Create with :meth:`start`; always finish with :meth:`stop`."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.pid = process.pid
        self.jobs_done = 0
        self.rss_bytes = 0
        self.idle_since = 0.0
        self._decoder = FrameDecoder()
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout

    @classmethod
    async def start(cls, argv: tuple[str, ...] = WORKER_ARGV) -> Worker:
        """Spawn a worker and wait for its ``ready`` frame.

        If cancelled or if the worker fails to start, the process is stopped before this
        raises: nothing is left behind.
        """
        process = await spawn_group(argv)
        worker = cls(process)
        try:
            frames = await worker._receive_frames()
            if not frames or frames[0].get("ev") != "ready":
                raise WorkerCrashed("worker did not say ready", {"frames": frames[:1]})
        except BaseException:
            await worker.stop(grace_s=0)
            raise
        return worker

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    async def _receive_frames(self) -> list[dict[str, Any]]:
        """The next non-empty batch of frames; :class:`WorkerCrashed` on EOF or bad bytes."""
        while True:
            try:
                data = await self._stdout.receive_some(_READ_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                raise await self._crashed()
            try:
                frames = self._decoder.feed(data)
            except ProtocolError as exc:
                await stop_group(self.process, grace_s=0)
                raise WorkerCrashed(f"worker broke the protocol: {exc}", {}) from None
            if frames:
                return frames

    async def _crashed(self) -> WorkerCrashed:
        with trio.move_on_after(_REAP_DEADLINE_S) as scope:
            scope.shield = True
            await self.process.wait()
        returncode = self.process.returncode
        if returncode is None:  # pragma: no cover - closed its stdout but kept running
            await stop_group(self.process, grace_s=0)
            return WorkerCrashed("worker closed its output", {"message": "closed its output"})
        info = describe_exit(returncode)
        return WorkerCrashed(f"worker {info['message']}", info)

    async def run(
        self,
        job_id: str,
        target: str,
        args: Mapping[str, Any],
        on_frame: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        """Run one job; return its ``done`` frame. Progress and log frames go to ``on_frame``.

        Raises :class:`WorkerCrashed` if the worker dies or breaks the protocol. If cancelled,
        the worker is in an unknown state mid-job: the caller must :meth:`stop` it.
        """
        frame = encode_frame({"op": "run", "job": job_id, "target": target, "args": args})
        try:
            await self._stdin.send_all(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise await self._crashed() from None
        while True:
            for message in await self._receive_frames():
                if message.get("ev") == "done":
                    self.jobs_done += 1
                    self.rss_bytes = int(message.get("rss_bytes", 0))
                    return message
                on_frame(message)

    async def stop(self, *, grace_s: float) -> None:
        """Stop the worker and its process group; see :func:`stop_group`. Shielded."""
        await stop_group(self.process, grace_s=grace_s)
