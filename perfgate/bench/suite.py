"""Measure a suite: scenarios x systems x runs, interleaved, into one result document.

The system under test is ``perfgate`` (started here, or ``--target``); peers are started
per scenario. Every system of a scenario is up for the whole scenario and runs alternate
between them in ABBA order (:func:`perfgate.bench.schedule.interleave`), so drift on a shared
machine is spread over all of them instead of landing on whichever was measured last.

Beside the subject and the peers, a jobs scenario measures perfgate's *variants* (with
``--peers``): ``perfgate-client`` (the subject through ``perfgate.client``, when that module
is importable) and ``perfgate-redis`` (a second perfgate started here with ``--broker`` on
the bench's redis-server, the one the Celery and arq peers use). They are recorded under the
scenario's ``variants``, and every peer gets perfgate/peer ratios for each of them.
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
from perfgate.bench.peers import REDIS_PEERS, peers_for
from perfgate.bench.redis_server import RedisUnavailable, redis_serving, url_for
from perfgate.bench.runner import RunFailed, RunOutcome, RunSettings, run_once
from perfgate.bench.schedule import interleave
from perfgate.bench.server import PeerOptions, ServerFailed, Target, serving

#: Defaults per scenario: modest, because client, server and peers share 2 cores in CI.
#: ``jobs-throughput`` and ``ws-idle`` are closed loop whatever ``--closed-loop`` says:
#: 32 callers each waiting for its result, and connections held idle.
SCENARIO_DEFAULTS: dict[str, dict[str, Any]] = {
    "http": {"rate_per_s": 200.0, "connections": 8, "subscribers": 0},
    "jobs": {"rate_per_s": 20.0, "connections": 8, "subscribers": 0},
    "jobs-throughput": {
        "rate_per_s": 20.0,
        "connections": 32,
        "subscribers": 0,
        "closed_loop": True,
    },
    "ws-fanout": {"rate_per_s": 50.0, "connections": 4, "subscribers": 20},
    "ws-churn": {"rate_per_s": 20.0, "connections": 4, "subscribers": 0},
    "ws-idle": {"rate_per_s": 1.0, "connections": 1, "subscribers": 0, "closed_loop": True},
}
DEFAULT_SCENARIOS = tuple(SCENARIO_DEFAULTS)
JOBS_SCENARIOS = frozenset({"jobs", "jobs-throughput"})
#: perfgate measured another way beside the subject (see the module docstring)
VARIANTS = ("perfgate-client", "perfgate-redis")
#: measured on a perfgate started for the scenario alone, so RSS per connection is against
#: a fresh server, as the peers' is
FRESH_SERVER_SCENARIOS = frozenset({"ws-idle"})


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
    #: ws-idle: connections held (over all client processes), and the CPU window
    idle_connections: int = 2000
    idle_window_s: float = 5.0
    #: worker processes of the job peers (Celery's prefork pool, arq workers, the process
    #: pool): perfgate's own ``[pool] max_workers``
    pool_workers: int = 4
    #: with ``peers``: only these peers and variants (None: all that apply to a scenario)
    only_peers: tuple[str, ...] | None = None
    #: TEST ONLY: CPU milliseconds burnt per HTTP request in the subject perfgate started
    #: here (see perfgate.bench._delayed); 0 in every real measurement.
    test_delay_ms: float = 0.0

    def settings_for(self, scenario: str, duration_s: float | None = None) -> RunSettings:
        defaults = SCENARIO_DEFAULTS[scenario]
        subscribers = self.subscribers if self.subscribers is not None else defaults["subscribers"]
        if scenario == "ws-idle":
            subscribers = self.idle_connections
        elif scenario != "ws-fanout":
            subscribers = 0
        window_s = self.idle_window_s if scenario == "ws-idle" else self.duration_s
        return RunSettings(
            scenario=scenario,
            rate_per_s=self.rate_per_s or defaults["rate_per_s"],
            duration_s=duration_s or window_s,
            connections=self.connections or defaults["connections"],
            subscribers=subscribers,
            timeout_s=self.timeout_s,
            processes=self.processes,
            closed_loop=self.closed_loop or defaults.get("closed_loop", False),
        )

    def variants_for(self, scenario: str) -> list[str]:
        """The perfgate variants measured in ``scenario`` (none without ``--peers``)."""
        from perfgate.bench.scenarios.jobclients import perfgate_client_available

        if not self.peers or scenario not in JOBS_SCENARIOS or self.subject != "perfgate":
            return []
        applicable = []
        if perfgate_client_available():
            applicable.append("perfgate-client")
        if self.target is None:
            applicable.append("perfgate-redis")
        return [v for v in applicable if self.only_peers is None or v in self.only_peers]

    def peers_for(self, scenario: str) -> list[str]:
        """The peers measured in ``scenario``: none without ``peers``."""
        if not self.peers:
            return []
        return [p for p in peers_for(scenario) if self.only_peers is None or p in self.only_peers]

    def needs_redis(self) -> bool:
        """Whether any system of the suite runs on the bench's redis-server."""
        if self.target is None and self.subject in REDIS_PEERS:
            return True
        return any(
            "perfgate-redis" in self.variants_for(s)
            or any(p in REDIS_PEERS for p in self.peers_for(s))
            for s in self.scenarios
        )

    def systems_for(self, scenario: str) -> int:
        return 1 + len(self.peers_for(scenario)) + len(self.variants_for(scenario))

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
            duration_s = self.settings_for(scenario).duration_s
            total += self.systems_for(scenario) * (self.runs * duration_s + self.warmup_s)
        return total


#: progress(description, seconds of load done so far)
Progress = Callable[[str, float], None]


async def _run_with_ticks(
    settings: RunSettings,
    target: Target,
    label: str,
    done_s: float,
    on_progress: Progress,
    fresh_rss_bytes: int | None = None,
) -> RunOutcome:
    """:func:`run_once`, reporting progress every quarter second while it runs.

    Its errors propagate as themselves, not wrapped in the nursery's ExceptionGroup.
    """
    outcome: list[RunOutcome] = []
    failure: list[Exception] = []

    async def measure(cancel: trio.CancelScope) -> None:
        try:
            outcome.append(await run_once(settings, target, fresh_rss_bytes=fresh_rss_bytes))
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
async def _subject(options: SuiteOptions, redis_base: str | None) -> AsyncIterator[Target]:
    if options.target is not None:
        yield options.target
    else:
        peer_options = _peer_options(options, options.subject, redis_base)
        async with serving(
            options.subject, options.log_dir, options.test_delay_ms, peer_options=peer_options
        ) as target:
            yield target


def _peer_options(options: SuiteOptions, name: str, redis_base: str | None) -> PeerOptions:
    if name not in REDIS_PEERS:
        return PeerOptions(workers=options.pool_workers)
    if redis_base is None:
        raise ServerFailed(f"{name} needs redis-server, which is not available")
    return PeerOptions(workers=options.pool_workers, redis_url=url_for(redis_base, name))


@asynccontextmanager
async def _redis_for(options: SuiteOptions) -> AsyncIterator[tuple[str | None, str]]:
    """The bench's redis-server if the suite needs one: ``(base URL or None, why not)``."""
    if not options.needs_redis():
        yield None, ""
        return
    try:
        async with redis_serving() as base:
            yield base, ""
    except RedisUnavailable as exc:
        if options.target is None and options.subject in REDIS_PEERS:
            raise ServerFailed(str(exc)) from exc
        yield None, str(exc)


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
    async with _redis_for(options) as (redis_base, _), _subject(options, redis_base) as subject:
        for scenario in options.scenarios:
            if scenario.startswith("ws-") and not subject.ws_url:
                skipped[scenario] = f"{subject_name} has no WebSocket endpoint"
                clock.skip(options, scenario)
                continue
            try:
                entry, peer_entries = await _measure_scenario(
                    options, scenario, subject_name, subject, clock, redis_base
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
        duration_s = options.settings_for(scenario).duration_s
        runs_s = options.runs * duration_s + options.warmup_s
        self.done_s += options.systems_for(scenario) * runs_s
        self.on_progress(f"{scenario}: skipped", self.done_s)


async def _measure_scenario(
    options: SuiteOptions,
    scenario: str,
    subject_name: str,
    subject: Target,
    clock: _LoadClock,
    redis_base: str | None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Warm up and measure one scenario on the subject, its variants and its peers, runs
    interleaved ABBA. Returns the subject's entry (with ``variants`` if any) and the peers'."""
    async with AsyncExitStack() as stack:
        if scenario in FRESH_SERVER_SCENARIOS and options.target is None:
            subject = await stack.enter_async_context(
                serving(
                    options.subject,
                    options.log_dir,
                    options.test_delay_ms,
                    label=f"{subject_name}-{scenario}",
                    peer_options=_peer_options(options, options.subject, redis_base),
                )
            )
            subject = attrs.evolve(subject, name=subject_name)
        targets = {subject_name: subject}
        variants = options.variants_for(scenario)
        for variant in variants:
            targets[variant] = await stack.enter_async_context(
                _variant(options, variant, subject, redis_base)
            )
        for peer in options.peers_for(scenario):
            if peer in targets:
                continue  # the subject is this peer (--subject): measure it once
            peer_options = _peer_options(options, peer, redis_base)
            targets[peer] = await stack.enter_async_context(
                serving(peer, options.log_dir, peer_options=peer_options)
            )
        fresh_rss: dict[str, int | None] = {name: None for name in targets}
        if scenario in FRESH_SERVER_SCENARIOS:
            fresh_rss = {name: _rss_bytes(target) for name, target in targets.items()}
        settings = options.settings_for(scenario)
        if options.warmup_s > 0:
            warmup = options.settings_for(scenario, options.warmup_s)
            for name, target in targets.items():
                label = f"{scenario}: warm-up {name}"
                await _run_with_ticks(
                    warmup, target, label, clock.done_s, clock.on_progress, fresh_rss[name]
                )
                clock.done_s += options.warmup_s
        outcomes: dict[str, list[RunOutcome]] = {name: [] for name in targets}
        for run_index, name in interleave(list(targets), options.runs):
            label = f"{scenario}: {name} run {run_index + 1}/{options.runs}"
            before = await trio.to_thread.run_sync(host.sample)
            outcome = await _run_with_ticks(
                settings, targets[name], label, clock.done_s, clock.on_progress, fresh_rss[name]
            )
            after = await trio.to_thread.run_sync(host.sample)
            outcome.summary["host"] = host.state_between(before, after)
            outcomes[name].append(outcome)
            clock.done_s += settings.duration_s
    entry = results.summarise_runs(subject_name, outcomes.pop(subject_name))
    if variants:
        entry["variants"] = {v: results.summarise_runs(v, outcomes.pop(v)) for v in variants}
        for v in variants:
            entry["variants"][v]["client"] = targets[v].client
    return entry, {name: results.summarise_runs(name, runs) for name, runs in outcomes.items()}


@asynccontextmanager
async def _variant(
    options: SuiteOptions, variant: str, subject: Target, redis_base: str | None
) -> AsyncIterator[Target]:
    """A perfgate variant's target: the subject through ``perfgate.client``, or a perfgate
    started on the bench's Redis (through ``perfgate.client`` when it is importable)."""
    from perfgate.bench.scenarios.jobclients import perfgate_client_available

    client = "perfgate-client" if perfgate_client_available() else "http"
    if variant == "perfgate-client":
        yield attrs.evolve(subject, name=variant, client="perfgate-client")
        return
    if redis_base is None:
        raise ServerFailed("perfgate-redis needs redis-server, which is not available")
    async with serving(
        "perfgate", options.log_dir, label=variant, broker=url_for(redis_base, variant)
    ) as target:
        yield attrs.evolve(target, name=variant, client=client)


def _rss_bytes(target: Target) -> int | None:
    """The server's RSS now (its pid from the ready file), or None if it cannot be read."""
    import psutil

    if target.pid is None:
        return None
    try:
        rss: int = psutil.Process(target.pid).memory_info().rss
    except psutil.Error:
        return None
    return rss
