"""Peer ``arq``: ``--workers`` arq worker processes on Redis, the ``echo`` task.

arq's worker is one asyncio process; the peer starts as many as perfgate has pool workers
(``python -m perfgate.bench.peers.arq_peer REDIS_URL``), each reporting ``ready`` on its
stdout once it polls the queue, and stops them with SIGTERM (arq's graceful shutdown). Each
child's stdin is a lifeline to this process, as this process's is to the bench.

arq polls: the worker for new jobs, the client for results (``job.result(poll_delay=...)``).
Both use :data:`POLL_DELAY_S` instead of arq's 0.5 s default, which would make the latency
mostly poll delay.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from perfgate.bench.peers._asgi import write_ready
from perfgate.bench.server import PeerOptions

POLL_DELAY_S = 0.01
STOP_TIMEOUT_S = 10.0


async def echo(ctx: dict[str, Any], x: Any) -> Any:
    return x


def run_worker(redis_url: str) -> None:
    """One arq worker process until SIGTERM/SIGINT (or its stdin closes)."""
    from arq.worker import Worker, func

    from perfgate.bench.peers.__main__ import watch_lifeline
    from perfgate.bench.scenarios.jobclients import arq_redis_settings

    threading.Thread(target=watch_lifeline, name="lifeline", daemon=True).start()

    async def started(ctx: dict[str, Any]) -> None:
        print("ready", flush=True)

    worker = Worker(
        functions=[func(echo, name="echo")],
        redis_settings=arq_redis_settings(redis_url),
        poll_delay=POLL_DELAY_S,
        on_startup=started,
        handle_signals=True,
    )
    worker.run()


def _stop(children: list[subprocess.Popen[bytes]]) -> int:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    code = 0
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            code = 1
        if child.stdin is not None:
            child.stdin.close()
    return code


def main(ready_file: str, options: PeerOptions) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    argv = [sys.executable, "-m", "perfgate.bench.peers.arq_peer", options.redis_url]
    children = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for _ in range(options.workers)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()  # the worker says "ready" or exits (EOF)
            if line.strip() != b"ready":
                print(f"arq worker {child.pid} did not start", file=sys.stderr)
                return 1
        ready = {"http": "", "ws": "", "pid": os.getpid(), "client": "arq"}
        write_ready(ready_file, {**ready, "redis": options.redis_url})
        while not stop.wait(0.5):
            if any(child.poll() is not None for child in children):
                print("an arq worker exited", file=sys.stderr)
                return 1
        return 0
    finally:
        _stop(children)


if __name__ == "__main__":
    run_worker(sys.argv[1])
