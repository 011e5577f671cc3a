"""The parent side of one run: spawn the client processes, start them together, merge.

A run is one scenario against one target for ``duration_s``. Client processes
(``python -m perfgate.bench.loadgen``) each drive a strided slice of the schedule; the parent
releases them at one shared ``time.monotonic()`` instant and merges their HDR histograms.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import attrs
import trio
from hdrh.histogram import HdrHistogram

from perfgate.bench import histogram as hdr
from perfgate.bench.loadgen import ClientSpec
from perfgate.bench.schedule import achieved_rate, is_valid, lag_growth
from perfgate.bench.server import Target

READY_TIMEOUT_S = 30.0
#: Lead time between "go" and the first intended send, so every process is waiting when it comes.
START_LEAD_S = 0.25


class RunFailed(Exception):
    """A client process crashed or did not answer in time."""


@attrs.frozen
class RunSettings:
    scenario: str
    rate_per_s: float
    duration_s: float
    connections: int
    subscribers: int = 0
    timeout_s: float = 2.0
    processes: int = 2
    closed_loop: bool = False


@attrs.define
class RunOutcome:
    """One run, merged over client processes: the summary for the JSON, and the histograms."""

    summary: dict[str, Any]
    corrected: HdrHistogram
    uncorrected: HdrHistogram


def client_specs(settings: RunSettings, target: Target, channel: str) -> list[ClientSpec]:
    """Split a run over client processes: schedule slices, connections and subscribers."""
    n = settings.processes
    return [
        ClientSpec(
            scenario=settings.scenario,
            http_url=target.http_url,
            ws_url=target.ws_url,
            rate_per_s=settings.rate_per_s,
            duration_s=settings.duration_s,
            connections=max(1, math.ceil(settings.connections / n)),
            part=k,
            parts=n,
            timeout_s=settings.timeout_s,
            subscribers=settings.subscribers // n + (1 if k < settings.subscribers % n else 0),
            channel=channel,
            closed_loop=settings.closed_loop,
            client=target.client,
            redis_url=target.redis_url,
        )
        for k in range(n)
    ]


class _Lines:
    """Newline-delimited reads from a trio stream."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def read_line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise RunFailed("client process closed its stdout")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


async def run_once(
    settings: RunSettings, target: Target, *, fresh_rss_bytes: int | None = None
) -> RunOutcome:
    """Measure one run. Raises :class:`RunFailed` (with the client's stderr) on a crash or hang.

    With ``fresh_rss_bytes`` (``ws-idle``: the server's RSS before any connection) and the
    target's pid, the server's RSS and CPU time are sampled over the run's window, and the
    summary gets an ``idle`` block (:func:`perfgate.bench.idle.idle_summary`).
    Cancellation kills the client processes (trio's process cleanup).
    """
    probe = None
    if fresh_rss_bytes is not None and target.pid is not None:
        from perfgate.bench.idle import ServerProbe

        probe = ServerProbe(target.pid)
    samples: dict[str, float] = {}
    channel = f"bench-{settings.scenario}-{uuid.uuid4().hex[:10]}"
    specs = client_specs(settings, target, channel)
    argv = [sys.executable, "-m", "perfgate.bench.loadgen"]
    results: list[dict[str, Any]] = [{} for _ in specs]
    with tempfile.TemporaryDirectory(prefix="perfgate-loadgen-") as tmp:
        logs = [Path(tmp) / f"client-{k}.log" for k in range(len(specs))]
        processes: list[trio.Process] = []
        try:
            for log in logs:
                with log.open("wb") as err:
                    processes.append(
                        await trio.lowlevel.open_process(
                            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err
                        )
                    )
            readers = [_Lines(p.stdout) for p in processes if p.stdout is not None]
            try:
                with trio.fail_after(READY_TIMEOUT_S):
                    for process, spec in zip(processes, specs, strict=True):
                        assert process.stdin is not None
                        await process.stdin.send_all(json.dumps(spec.to_json()).encode() + b"\n")
                    for reader in readers:
                        await _expect_event(reader, "ready")
                start_at = time.monotonic() + START_LEAD_S
                for process in processes:
                    assert process.stdin is not None
                    await process.stdin.send_all(
                        json.dumps({"start_at": start_at}).encode() + b"\n"
                    )
                with trio.fail_after(
                    settings.duration_s + 3 * settings.timeout_s + READY_TIMEOUT_S
                ):
                    if probe is not None:
                        # the clients hold their connections past the window (IDLE_HOLD_S)
                        await _sample_window(probe, start_at, settings, samples)
                    for k, reader in enumerate(readers):
                        results[k] = await _expect_event(reader, "result")
            except (RunFailed, trio.TooSlowError, ValueError) as exc:
                tails = "\n".join(f"--- client {k}:\n{_tail(log)}" for k, log in enumerate(logs))
                raise RunFailed(
                    f"{settings.scenario} against {target.name}: {exc!r}\n{tails}"
                ) from exc
        finally:
            with trio.CancelScope(shield=True):
                for process in processes:
                    with trio.move_on_after(2):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
    outcome = merge_clients(settings, start_at, results)
    if probe is not None and fresh_rss_bytes is not None and samples:
        from perfgate.bench.idle import idle_summary

        outcome.summary["idle"] = idle_summary(
            connections=sum(int(r.get("idle_connections", 0)) for r in results),
            fresh_rss_bytes=fresh_rss_bytes,
            rss_bytes=int(samples["rss_bytes"]),
            cpu_s=samples["cpu_end_s"] - samples["cpu_start_s"],
            window_s=samples["window_s"],
        )
    return outcome


async def _sample_window(
    probe: Any, start_at_s: float, settings: RunSettings, samples: dict[str, float]
) -> None:
    """Server CPU time at the window's start and end, RSS at both (the larger is kept).
    Leaves ``samples`` empty if the server is gone (the run then has no ``idle`` block)."""
    import psutil

    from perfgate.bench.loadgen import sleep_until_monotonic

    try:
        await sleep_until_monotonic(start_at_s)
        rss0, cpu0, t0 = probe.rss_bytes(), probe.cpu_s(), time.monotonic()
        await sleep_until_monotonic(start_at_s + settings.duration_s)
        cpu1, t1 = probe.cpu_s(), time.monotonic()
        rss1 = probe.rss_bytes()
    except psutil.Error:
        return
    samples.update(rss_bytes=max(rss0, rss1), cpu_start_s=cpu0, cpu_end_s=cpu1, window_s=t1 - t0)


async def _expect_event(reader: _Lines, event: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(await reader.read_line())
    if obj.get("event") != event:
        raise RunFailed(f"expected {event!r} from a client, got {obj!r}")
    return obj


def merge_clients(
    settings: RunSettings, start_at_s: float, results: list[dict[str, Any]]
) -> RunOutcome:
    """Combine the client processes' result lines into one run (pure)."""
    requests = [r["requests"] for r in results]
    sent = sum(r["sent"] for r in requests)
    growths = [
        lag_growth(r["first_quarter_lag_s"], r["last_quarter_lag_s"], settings.duration_s)
        for r in requests
    ]
    if settings.closed_loop:
        # closed loop: what was done is the measure, so a failed or timed-out request
        # (which frees its caller at once, or only after the timeout) is not throughput
        completed = sum(r["completed"] for r in requests)
        achieved = offered = completed / settings.duration_s
    else:
        offered = settings.rate_per_s
        total = sum(r["scheduled"] for r in requests)
        achieved = sum(
            achieved_rate(offered * r["scheduled"] / total, r["sent"], r["scheduled"], growth)
            for r, growth in zip(requests, growths, strict=True)
            if total > 0
        )
    errors = sum(r["errors"] for r in requests)
    timeouts = sum(r["timeouts"] for r in requests)
    samples = [s for r in requests for s in r["error_samples"]][:10]
    lag = hdr.merge(r["send_lag_histogram"] for r in requests)

    deliveries = [r["deliveries"] for r in results if r.get("deliveries")]
    extra: dict[str, Any] = {}
    if deliveries:
        # ws-fanout: latency is delivery latency; a delivery that never came is an error and
        # counts as latency >= the timeout
        corrected = hdr.merge(d["histogram"] for d in deliveries)
        uncorrected = hdr.merge(d["uncorrected_histogram"] for d in deliveries)
        subscribers = sum(r.get("subscribers", 0) for r in results)
        published_ok = sum(r["completed"] for r in requests)
        unique = sum(r.get("unique_deliveries", 0) for r in results)
        lost = max(0, published_ok * subscribers - unique)
        for _ in range(lost):
            hdr.record_ms(corrected, settings.timeout_s * 1000.0)
            hdr.record_ms(uncorrected, settings.timeout_s * 1000.0)
        extra = {
            "subscribers": subscribers,
            "published": published_ok,
            "deliveries": unique,
            "lost": lost,
            "duplicated": sum(r.get("duplicated", 0) for r in results),
        }
        errors += lost
    else:
        corrected = hdr.merge(r["histogram"] for r in requests)
        uncorrected = hdr.merge(r["uncorrected_histogram"] for r in requests)

    summary: dict[str, Any] = {
        "mode": "closed-loop" if settings.closed_loop else "open-loop",
        "offered_rate": offered,
        "achieved_rate": achieved,
        "valid": settings.closed_loop or is_valid(achieved, offered),
        "requests": sent,
        "errors": errors,
        "timeouts": timeouts,
        "latency_ms": hdr.summary_ms(corrected),
        "uncorrected_latency_ms": hdr.summary_ms(uncorrected),
        "send_lag_ms": hdr.summary_ms(lag),
        "lag_growth": max(growths, default=0.0),
        "error_samples": samples,
        **extra,
    }
    return RunOutcome(summary=summary, corrected=corrected, uncorrected=uncorrected)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
