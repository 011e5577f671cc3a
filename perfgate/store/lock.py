"""One server per data directory: an exclusive ``flock`` held for the life of the process.

Two servers on one ``data_dir`` would both recover the same unfinished jobs and run them at
the same time (seen: a second server was ready in 0.5 s and re-ran the first one's four
running jobs). ``flock`` locks belong to the open file, so the kernel releases this one when
the process dies however it dies (``kill -9`` included): there is no stale lock to clean up.
The holder writes its pid into the file, so the refusal can say who holds it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from perfgate.errors import ConfigError

FILENAME: Final = "perfgate.lock"


@contextlib.contextmanager
def hold_data_dir(data_dir: Path) -> Iterator[Path]:
    """Hold the exclusive lock on ``data_dir`` (which must exist) until the block exits.

    Raises :class:`~perfgate.errors.ConfigError` (one line, exit 2 from the CLI) when another
    process holds it, naming that process's pid, or when the lock file cannot be created.
    The file descriptor is not inherited by child processes, so a worker that outlives its
    server for a moment does not keep the directory locked.
    """
    path = data_dir / FILENAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError(f"[store] data_dir {str(data_dir)!r}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ConfigError(f"[store] data_dir {str(data_dir)!r}: {exc.strerror}") from None
            holder = _read_pid(fd)
            raise ConfigError(
                f"[store] data_dir {str(data_dir)!r} is in use by another perfgate (pid {holder})"
            ) from None
        with contextlib.suppress(OSError):  # the pid is a courtesy (a full disk may refuse it)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        # Closing releases the lock. The file stays: removing it would race with a server
        # that has just opened it and is about to lock it.
        os.close(fd)


def _read_pid(fd: int) -> str:
    """The holder's pid as written in the lock file, or ``unknown`` (it is still writing)."""
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return text if text.isdigit() else "unknown"
