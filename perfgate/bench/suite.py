"""Measure a suite: scenarios x systems x runs, interleaved, into one result document.

The system under test is ``perfgate`` (started here, or ``--target``); peers are started
per scenario. Every system of a scenario is up for the whole scenario and runs alternate
between them in ABBA order (:func:`perfgate.bench.schedule.interleave`), so drift on a shared
machine is spread over all of them instead of landing on whichever was measured last.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from perfgate.bench import host, results
from perfgate.bench.peers import peers_for
from perfgate.bench.runner import RunFailed, RunOutcome, RunSettings, run_once
from perfgate.bench.schedule import interleave
from perfgate.bench.server import ServerFailed, Target, serving

#: Defaults per scenario: modest, because client, server and peers share 2 cores in CI.
SCENARIO_DEFAULTS: dict[str, dict[str, Any]] = {
    "http": {"rate_per_s": 200.0, "connections": 8, "subscribers": 0},
    "jobs": {"rate_per_s": 20.0, "connections": 8, "subscribers": 0},
    "ws-fanout": {"rate_per_s": 50.0, "connections": 4, "subscribers": 20},
    "ws-churn": {"rate_per_s": 20.0, "connections": 4, "subscribers": 0},
}
DEFAULT_SCENARIOS = tuple(SCENARIO_DEFAULTS)


@attrs.frozen
class SuiteOptions:
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    runs: int = 7
    duration_s: float = 2.0
    warmup_s: float = 1.0
    rate_per_s: float | None = None
    connections: int | None = None
    subscribers: int | None = None
    timeout_s: float = 2.0
    processes: int = 2
    closed_loop: bool = False
    peers: bool = False
    subject: str = "perfgate"
    target: Target | None = None
    log_dir: Path | None = None
    #: TEST ONLY: CPU milliseconds burnt per HTTP request in the subject perfgate started
    #: here (see perfgate.bench._delayed); 0 in every real measurement.
    test_delay_ms: float = 0.0

    def settings_for(self, scenario: str, duration_s: float | None = None) -> RunSettings:
        defaults = SCENARIO_DEFAULTS[scenario]
        subscribers = self.subscribers if self.subscribers is not None else defaults["subscribers"]
        return RunSettings(
            scenario=scenario,
            rate_per_s=self.rate_per_s or defaults["rate_per_s"],
            duration_s=duration_s or self.duration_s,
            connections=self.connections or defaults["connections"],
            subscribers=subscribers if scenario == "ws-fanout" else 0,
            timeout_s=self.timeout_s,
            processes=self.processes,
            closed_loop=self.closed_loop,
        )

    def record(self, subject_name: str) -> dict[str, Any]:
        """The settings a result was measured with (the gate refuses to compare different ones)."""
        return {
            "runs": self.runs,
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "timeout_s": self.timeout_s,
            "processes": self.processes,
            "mode": "closed-loop" if self.closed_loop else "open-loop",
            "subject": subject_name,
            "target": None if self.target is None else attrs.asdict(self.target),
            "server": None if self.target is not None else server_settings(),
            "scenarios": {s: attrs.asdict(self.settings_for(s)) for s in self.scenarios},
        }

    def planned_seconds(self) -> float:
        """Load time the suite will spend (for the progress bar), without start-up costs."""
        total = 0.0
        for scenario in self.scenarios:
            systems = 1 + (len(peers_for(scenario)) if self.peers else 0)
            total += systems * (self.runs * self.duration_s + self.warmup_s)
        return total


#: progress(description, seconds of load done so far)
Progress = Callable[[str, float], None]


async def _run_with_ticks(
    settings: RunSettings, target: Target, label: str, done_s: float, on_progress: Progress
) -> RunOutcome:
    """:func:`run_once`, reporting progress every quarter second while it runs.

    Its errors propagate as themselves, not wrapped in the nursery's ExceptionGroup.
    """
    outcome: list[RunOutcome] = []
    failure: list[Exception] = []

    async def measure(cancel: trio.CancelScope) -> None:
        try:
            outcome.append(await run_once(settings, target))
        except Exception as exc:
            failure.append(exc)
        cancel.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(measure, nursery.cancel_scope)
        started = trio.current_time()
        while True:
            elapsed = min(settings.duration_s, trio.current_time() - started)
            on_progress(label, done_s + elapsed)
            await trio.sleep(0.25)
    if failure:
        raise failure[0]
    return outcome[0]


@asynccontextmanager
async def _subject(options: SuiteOptions) -> AsyncIterator[Target]:
    if options.target is not None:
        yield options.target
    else:
        async with serving(options.subject, options.log_dir, options.test_delay_ms) as target:
            yield target


async def run_suite(
    options: SuiteOptions, on_progress: Progress, *, now: Callable[[], dt.datetime]
) -> dict[str, Any]:
    """Run every scenario; returns the result document (not yet written).

    ``on_progress(description, seconds)`` is called several times a second with the load
    seconds completed so far. A scenario that cannot be measured (the target has no WebSocket
    endpoint, a peer does not start, a client process crashes) is recorded under ``skipped``
    with the reason, and the suite goes on; ServerFailed for the subject itself propagates.
    Cancellation stops every server and client process (their context managers clean up).
    """
    subject_name = options.subject if options.target is None else options.target.name
    scenarios: dict[str, dict[str, Any]] = {}
    peers: dict[str, dict[str, dict[str, Any]]] = {}
    skipped: dict[str, str] = {}
    clock = _LoadClock(on_progress)
    async with _subject(options) as subject:
        for scenario in options.scenarios:
            if scenario.startswith("ws-") and not subject.ws_url:
                skipped[scenario] = f"{subject_name} has no WebSocket endpoint"
                clock.skip(options, scenario)
                continue
            try:
                entry, peer_entries = await _measure_scenario(
                    options, scenario, subject_name, subject, clock
                )
            except (RunFailed, ServerFailed) as exc:
                skipped[scenario] = str(exc)
                clock.skip(options, scenario)
                continue
            scenarios[scenario] = entry
            if peer_entries:
                peers[scenario] = peer_entries
    done_s = clock.done_s
    on_progress("done", done_s)
    document = results.build(scenarios, peers, options.record(subject_name), now=now())
    document["skipped"] = skipped
    if options.test_delay_ms:
        document["test_injection"] = {"delay_ms_per_http_request": options.test_delay_ms}
    return document


def server_settings() -> dict[str, Any]:
    """The worker counts of the ``perfgate serve`` the bench starts: it reads the same
    ``perfgate.toml`` and ``PERFGATE_*`` variables as this process."""
    from perfgate.config import load_config
    from perfgate.errors import ConfigError

    try:
        pool = load_config().pool
    except (ConfigError, OSError) as exc:
        return {"config_error": str(exc)}
    return {"pool_min_workers": pool.min_workers, "pool_max_workers": pool.max_workers}


class _LoadClock:
    """Seconds of load done so far, for the progress bar."""

    def __init__(self, on_progress: Progress) -> None:
        self.on_progress = on_progress
        self.done_s = 0.0

    def skip(self, options: SuiteOptions, scenario: str) -> None:
        systems = 1 + (len(peers_for(scenario)) if options.peers else 0)
        self.done_s += systems * (options.runs * options.duration_s + options.warmup_s)
        self.on_progress(f"{scenario}: skipped", self.done_s)


async def _measure_scenario(
    options: SuiteOptions, scenario: str, subject_name: str, subject: Target, clock: _LoadClock
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Warm up and measure one scenario on the subject and its peers, runs interleaved ABBA."""
    async with AsyncExitStack() as stack:
        targets = {subject_name: subject}
        if options.peers:
            for peer in peers_for(scenario):
                if peer in targets:
                    continue  # the subject is this peer (--subject): measure it once
                targets[peer] = await stack.enter_async_context(serving(peer, options.log_dir))
        if options.warmup_s > 0:
            warmup = options.settings_for(scenario, options.warmup_s)
            for name, target in targets.items():
                label = f"{scenario}: warm-up {name}"
                await _run_with_ticks(warmup, target, label, clock.done_s, clock.on_progress)
                clock.done_s += options.warmup_s
        outcomes: dict[str, list[RunOutcome]] = {name: [] for name in targets}
        settings = options.settings_for(scenario)
        for run_index, name in interleave(list(targets), options.runs):
            label = f"{scenario}: {name} run {run_index + 1}/{options.runs}"
            before = await trio.to_thread.run_sync(host.sample)
            outcome = await _run_with_ticks(
                settings, targets[name], label, clock.done_s, clock.on_progress
            )
            after = await trio.to_thread.run_sync(host.sample)
            outcome.summary["host"] = host.state_between(before, after)
            outcomes[name].append(outcome)
            clock.done_s += options.duration_s
    entry = results.summarise_runs(subject_name, outcomes.pop(subject_name))
    return entry, {name: results.summarise_runs(name, runs) for name, runs in outcomes.items()}
