"""The command shim: ``python -m perfgate.pool.shim -- ARGV...``. Runs one command job.

The pool starts the shim as the leader of a new process group; the command runs in that same
group with the shim's stdout/stderr (so its output reaches the pool directly) and /dev/null as
stdin. The shim's own stdin is the lifeline: when it hangs up (the server died, even by
``kill -9``), the shim SIGKILLs the whole group, the command and everything it started.

To stop a job the pool signals the group: SIGTERM reaches the command directly; the shim
survives it (a no-op handler, which exec resets, so the command keeps the default action) to
report the command's status. The shim exits with the command's exit code, or, if the command
died from a signal, by the same signal, so the pool sees exactly what the command saw.

No trio, no pool package imports beyond the lifeline helper: it starts in tens of milliseconds.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys

from perfgate.pool.lifeline import start_lifeline

EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127


def _mirror(returncode: int) -> None:
    """Exit the way the command did: the same code, or death by the same signal."""
    if returncode >= 0:
        os._exit(returncode)
    signum = -returncode
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # dying by SIGSEGV should not dump core
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # pragma: no cover - only if the signal did not kill us


def main(argv: list[str]) -> None:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.stderr.write("usage: python -m perfgate.pool.shim -- COMMAND [ARG...]\n")
        os._exit(2)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    start_lifeline(0)
    try:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    except OSError as exc:
        sys.stderr.write(f"perfgate: cannot run {argv[0]!r}: {exc.strerror}\n")
        sys.stderr.flush()
        os._exit(EXIT_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_CANNOT_EXECUTE)
    while True:
        try:
            returncode = child.wait()
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            continue
    sys.stdout.flush()
    sys.stderr.flush()
    _mirror(returncode)


if __name__ == "__main__":
    main(sys.argv[1:])
