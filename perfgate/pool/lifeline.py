"""The lifeline: a child process's stdin pipe, whose hang-up means the server is gone.

Linux reports POLLHUP on a pipe's read end once every writer has closed, whether or not unread
data remains, and the only writer is the server. So a thread that polls stdin for POLLHUP (and
nothing else) learns of the server's death at once, even after ``kill -9``, and does not compete
with the main thread that reads the same fd. ``PR_SET_PDEATHSIG`` is not used on purpose: it
fires when the spawning *thread* exits, and trio spawns children from short-lived threads.
"""

from __future__ import annotations

import os
import select
import signal
import threading


def watch_lifeline(fd: int) -> None:
    """Block until ``fd`` (a pipe's read end) hangs up; then kill our process group and exit."""
    poller = select.poll()
    poller.register(fd, 0)  # POLLHUP/POLLERR are always reported; data arriving is not
    while True:
        try:
            events = poller.poll()
        except InterruptedError:  # pragma: no cover - PEP 475 retries, belt and braces
            continue
        if events:
            break
    if os.getpgrp() == os.getpid():
        # We lead our own group (the pool starts us with process_group=0): take our children.
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(70)


def start_lifeline(fd: int) -> None:
    """Watch ``fd`` from a daemon thread (see :func:`watch_lifeline`)."""
    threading.Thread(target=watch_lifeline, args=(fd,), name="lifeline", daemon=True).start()
