"""The worker process: ``python -m perfgate.pool.worker_main``. Runs Python tasks, one at a time.

It reads ``run`` frames from stdin and answers on a private duplicate of stdout (fd 1 itself is
pointed at stderr, so a task's ``print`` cannot corrupt the protocol). A task's exception is a
``done`` frame with ``ok: false``, never a dead worker.

Lifeline (:mod:`perfgate.pool.lifeline`): stdin is also the worker's link to the server; when
the server dies, even by ``kill -9``, the worker kills its own process group (itself and anything
its task spawned) within milliseconds.

This module imports neither trio nor the rest of the pool, so a worker starts quickly.
"""

from __future__ import annotations

import importlib
import os
import select
import threading
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

import psutil

from perfgate.pool.framing import FrameDecoder, encode_frame
from perfgate.pool.lifeline import start_lifeline
from perfgate.pool.permanent import is_permanent, mark_permanent


class _Context:
    """The ``ctx`` a task receives. Safe to call from threads the task starts."""

    def __init__(self, send: Callable[[dict[str, Any]], None]) -> None:
        self._send = send

    def progress(self, fraction: float, message: str = "") -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        self._send({"ev": "progress", "fraction": fraction, "message": str(message)})

    def log(self, line: str) -> None:
        self._send({"ev": "log", "line": str(line)})


class _RssReader:
    """The process's resident set size, read after every job.

    On Linux one ``pread`` of ``/proc/self/statm`` on a descriptor kept open (~2 us);
    ``psutil.Process().memory_info()`` opens and parses a file each time (~13 us), which on a
    no-op job was a quarter of the worker's CPU. psutil remains the fallback elsewhere.
    """

    def __init__(self) -> None:
        self._page_bytes = os.sysconf("SC_PAGE_SIZE")
        try:
            self._statm_fd: int | None = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._statm_fd = None
            self._process = psutil.Process()

    def rss_bytes(self) -> int:
        if self._statm_fd is not None:
            return int(os.pread(self._statm_fd, 128, 0).split()[1]) * self._page_bytes
        return int(self._process.memory_info().rss)


class WorkerLoop:
    """The run loop, separated from process set-up so it can be tested over plain pipes."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self._in_fd = in_fd
        self._out_fd = out_fd
        self._decoder = FrameDecoder()
        self._write_lock = threading.Lock()
        self._targets: dict[str, Callable[..., Any]] = {}
        self._rss = _RssReader()
        self.context = _Context(self.send)

    def send(self, message: dict[str, Any]) -> None:
        self.send_frame(encode_frame(message))

    def send_frame(self, frame: bytes) -> None:
        data = memoryview(frame)
        with self._write_lock:
            while data:
                written = os.write(self._out_fd, data)
                data = data[written:]

    def resolve(self, target: str) -> Callable[..., Any]:
        """Import ``module:function`` once per worker; later jobs reuse it."""
        fn = self._targets.get(target)
        if fn is None:
            module_name, _, attr = target.partition(":")
            fn = getattr(importlib.import_module(module_name), attr)
            if not callable(fn):
                raise TypeError(f"{target} is not callable")
            self._targets[target] = fn
        return fn

    def run_job(self, message: dict[str, Any]) -> None:
        frame: bytes
        try:
            try:
                fn = self.resolve(str(message["target"]))
            except Exception as exc:
                # A target that cannot be imported now will not be importable on a retry.
                mark_permanent(exc)
                raise
            result = fn(self.context, **message.get("args", {}))
            done = {"ev": "done", "ok": True, "result": result, "rss_bytes": self._rss.rss_bytes()}
            try:
                # Encoded once, here, so that a result that is not JSON fails this job, not
                # the worker.
                frame = encode_frame(done)
            except (TypeError, ValueError) as exc:
                mark_permanent(exc)  # the same result would fail the same way next time
                raise
        except Exception as exc:
            frame = encode_frame(
                {
                    "ev": "done",
                    "ok": False,
                    "error": {
                        "type": type(exc).__name__,
                        "message": str(exc),
                        "kind": "exception",
                        "permanent": is_permanent(exc),
                    },
                    "traceback": traceback.format_exc(),
                    "rss_bytes": self._rss.rss_bytes(),
                }
            )
        self.send_frame(frame)

    def serve(self) -> None:
        """Answer ``run`` frames, in order, until stdin reaches EOF (the pool closed it).

        The pool may send the next job before this one is done (prefetch), and may then take it
        back with ``{"op": "skip", "job": ID}``; a skipped job is answered, in its turn, with a
        ``done`` frame carrying ``"skipped": true``, so that every ``run`` gets exactly one
        ``done`` and the pool can match them by order alone.
        """
        self.send({"ev": "ready", "pid": os.getpid()})
        runs: deque[dict[str, Any]] = deque()
        skipped: set[str] = set()
        poller = select.poll()
        poller.register(self._in_fd, select.POLLIN)
        while True:
            # Block for work when there is none; otherwise only pick up what already arrived
            # (a skip for a queued job must be seen before that job starts).
            if not runs or poller.poll(0):
                data = os.read(self._in_fd, 1 << 16)
                if not data:
                    return
                for message in self._decoder.feed(data):
                    if message.get("op") == "run":
                        runs.append(message)
                    elif message.get("op") == "skip" and any(
                        run["job"] == message.get("job") for run in runs
                    ):
                        skipped.add(str(message["job"]))
            if runs:
                message = runs.popleft()
                if message["job"] in skipped:
                    skipped.discard(message["job"])
                    self.send({"ev": "done", "ok": False, "skipped": True, "rss_bytes": 0})
                else:
                    self.run_job(message)


def main() -> None:
    out_fd = os.dup(1)
    os.dup2(2, 1)  # a task's print() goes to stderr, never into the protocol stream
    os.set_inheritable(out_fd, False)
    start_lifeline(0)
    WorkerLoop(0, out_fd).serve()


if __name__ == "__main__":
    main()
