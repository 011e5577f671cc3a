"""The client-process side of a run: drive one slice of the open-loop load and report.

Run as ``python -m perfgate.bench.loadgen``; the parent (``runner.py``) talks to it over
stdin/stdout, one JSON object per line:

1. parent -> child: the :class:`ClientSpec`;
2. child -> parent: ``{"event": "ready"}`` once connections that must exist before the load
   (WebSocket subscribers) are up;
3. parent -> child: ``{"start_at": T}``, a ``time.monotonic()`` instant shared by every
   client process (CLOCK_MONOTONIC is system-wide on Linux), so their schedules interleave;
4. child -> parent: ``{"event": "result", "requests": {...}, "deliveries": {...}|null, ...}``.

Each connection (``--connections``) works through its own strided slice of the schedule:
it sleeps until a request's intended time, sends, and if it is still busy with an earlier
request when a send falls due, the request goes out late and its latency, measured from the
intended time, includes that wait. A connection gives up sending (the rest count as not sent,
so the achieved rate drops) once it is ``timeout_s`` past the end of the schedule.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from perfgate.bench.recorder import Recorder
from perfgate.bench.schedule import Schedule, split_for_workers

#: An operation: ``op(seq, intended_s, sent_s)``; raises on failure, returns on success.
Op = Callable[[int, float, float], Awaitable[None]]
#: An idle scenario (ws-idle) holds its connections this long past the window, so the
#: parent's last sample of the server is taken before they close.
IDLE_HOLD_S = 0.5


@attrs.frozen
class ClientSpec:
    """Everything one client process needs to know (JSON-serialisable, sent on stdin)."""

    scenario: str
    http_url: str
    ws_url: str
    rate_per_s: float
    duration_s: float
    connections: int = 4
    part: int = 0
    parts: int = 1
    timeout_s: float = 2.0
    subscribers: int = 0
    channel: str = "bench"
    closed_loop: bool = False
    #: the jobs scenarios' client: "http", "perfgate-client", "celery" or "arq"
    client: str = "http"
    redis_url: str = ""

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClientSpec:
        return cls(**data)


async def sleep_until_monotonic(when_s: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``when_s`` (trio's clock has its own offset)."""
    await trio.sleep_until(trio.current_time() + (when_s - time.monotonic()))


async def drive(
    spec: ClientSpec,
    open_worker: Callable[[], Any],
    recorder: Recorder,
    start_at_s: float,
) -> None:
    """Run the load: ``spec.connections`` concurrent workers, each an async context manager
    from ``open_worker()`` yielding an :data:`Op`. Returns when every worker is done;
    cancelling it abandons in-flight requests (they are not recorded).
    """
    schedule = Schedule(
        rate_per_s=spec.rate_per_s,
        duration_s=spec.duration_s,
        start_s=start_at_s,
        part=spec.part,
        parts=spec.parts,
    )
    recorder.schedule_start_s, recorder.schedule_end_s = schedule.start_s, schedule.end_s
    recorder.scheduled = len(schedule)
    async with trio.open_nursery() as nursery:
        for worker_schedule in split_for_workers(schedule, spec.connections):
            if spec.closed_loop:
                nursery.start_soon(_closed_loop_worker, spec, schedule, open_worker, recorder)
            else:
                nursery.start_soon(_open_loop_worker, spec, worker_schedule, open_worker, recorder)


async def _attempt(spec: ClientSpec, op: Op, recorder: Recorder, seq: int, intended: float) -> None:
    sent = time.monotonic()
    recorder.on_send(intended, sent)
    with trio.move_on_after(spec.timeout_s) as scope:
        try:
            await op(seq, intended, sent)
        except Exception as exc:
            recorder.on_error(intended, sent, time.monotonic(), f"{type(exc).__name__}: {exc}")
            return
    if scope.cancelled_caught:
        recorder.on_timeout(intended, sent, spec.timeout_s)
    else:
        recorder.on_done(intended, sent, time.monotonic())


async def _open_loop_worker(
    spec: ClientSpec, schedule: Schedule, open_worker: Callable[[], Any], recorder: Recorder
) -> None:
    give_up_s = schedule.end_s + spec.timeout_s
    async with open_worker() as op:
        for seq, intended in schedule:
            await sleep_until_monotonic(intended)
            if time.monotonic() > give_up_s:
                return
            await _attempt(spec, op, recorder, seq, intended)


async def _closed_loop_worker(
    spec: ClientSpec, schedule: Schedule, open_worker: Callable[[], Any], recorder: Recorder
) -> None:
    # Closed loop (an option, labelled as such in results): the next request leaves when the
    # previous one is answered, so a stall lowers the load instead of showing as latency.
    await sleep_until_monotonic(schedule.start_s)
    seq = 0
    async with open_worker() as op:
        while time.monotonic() < schedule.end_s:
            await _attempt(spec, op, recorder, seq, time.monotonic())
            seq += 1


async def run_client(spec: ClientSpec, read_line: Callable[[], Awaitable[str]]) -> dict[str, Any]:
    """The whole child protocol after the spec: prepare, say ready, wait for go, drive, finish."""
    from perfgate.bench.scenarios import get_scenario
    from perfgate.bench.scenarios.ws_idle import WsIdleScenario

    scenario = get_scenario(spec.scenario)(spec)
    async with trio.open_nursery() as nursery:
        await scenario.prepare(nursery)
        _emit({"event": "ready"})
        line = await read_line()
        if not line:
            raise SystemExit("loadgen: parent went away before the start signal")
        start_at = float(json.loads(line)["start_at"])
        if isinstance(scenario, WsIdleScenario):
            # nothing to send: the connections opened in prepare() are the load
            await sleep_until_monotonic(start_at + spec.duration_s + IDLE_HOLD_S)
            requests = scenario.setups
        else:
            requests = Recorder()
            await drive(spec, scenario.open_worker, requests, start_at)
        extra = await scenario.finish(start_at)
        nursery.cancel_scope.cancel()
    return {"event": "result", "requests": requests.to_json(), **extra}


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> int:
    line = sys.stdin.readline()
    if not line:
        print("loadgen: expected a JSON client spec on stdin", file=sys.stderr)
        return 2
    spec = ClientSpec.from_json(json.loads(line))

    async def read_line() -> str:
        return await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)

    result = trio.run(run_client, spec, read_line)
    _emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
