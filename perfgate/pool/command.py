"""Command jobs: one fresh process group per run, under the shim, output streamed as lines.

The argv is built by :func:`perfgate.pool.template.render_argv`; no shell is involved. The
process runs as ``python -m perfgate.pool.shim -- ARGV`` (see :mod:`perfgate.pool.shim` for why)
in a new process group that is always stopped and swept before :func:`run_command` returns,
however it returns.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

import trio

from perfgate.pool.lines import LineSplitter
from perfgate.pool.process import signal_group, spawn_group, stop_group

SHIM_ARGV = (sys.executable, "-m", "perfgate.pool.shim", "--")
_READ_BYTES = 1 << 16


async def run_command(
    argv: Sequence[str],
    *,
    on_line: Callable[[str, str], None],
    max_line_bytes: int,
    kill_grace_s: float,
) -> int:
    """Run ``argv`` to completion and return its return code (negative: killed by a signal).

    ``on_line(stream, line)`` is called for each stdout/stderr line as it arrives. If
    cancelled (timeout or job cancel), the group gets SIGTERM, then SIGKILL after
    ``kill_grace_s``, and is reaped before the cancellation propagates.
    """
    process = await spawn_group([*SHIM_ARGV, *argv], stderr=subprocess.PIPE)
    try:
        async with trio.open_nursery() as nursery:
            assert process.stdout is not None and process.stderr is not None
            nursery.start_soon(_pump, process.stdout, "stdout", on_line, max_line_bytes)
            nursery.start_soon(_pump, process.stderr, "stderr", on_line, max_line_bytes)
            await process.wait()
            # Stragglers the command left in its group would hold the pipes open: sweep them
            # now, so that the pumps read what is left, see EOF, and we return.
            signal_group(process, signal.SIGKILL)
    finally:
        await stop_group(process, grace_s=kill_grace_s)
    assert process.returncode is not None
    return process.returncode


async def _pump(
    stream: trio.abc.ReceiveStream,
    name: str,
    on_line: Callable[[str, str], None],
    max_line_bytes: int,
) -> None:
    splitter = LineSplitter(max_line_bytes)
    while True:
        try:
            data = await stream.receive_some(_READ_BYTES)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            data = b""
        if not data:
            break
        for line in splitter.feed(data):
            on_line(name, line)
    for line in splitter.flush():
        on_line(name, line)
