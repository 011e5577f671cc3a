"""The shared job queue: Redis Streams with a consumer group, leases, and reclaim
(docs/architecture.md §6).

Each priority has a stream (``perfgate:{q}:high|normal|low``) and every instance is a consumer
of the group ``workers``. :meth:`RedisJobQueue.run` keeps two loops in its own nursery:

* **claim** — as soon as the local pool has room, run ``CLAIM_LUA``: first (every
  ``lease_s / 2``) reclaim entries idle for longer than the lease (their owner stopped
  refreshing them: it was killed or cut off), then read new entries, high priority first.
  Claiming a job takes its lease (``perfgate:{lease}:ID``, TTL ``lease_s``) and records which
  entry it came from; the job is then submitted to the local pool. Room is ``capacity`` minus
  the jobs this instance's pool has not finished yet, so a finished job frees its place at
  once (it wakes the loop), not at the next lease refresh. With room and nothing to claim,
  the loop blocks in ``XREAD BLOCK`` after the streams' newest entries (read by the same
  claim script, so none is missed) for at most ``block_s``: a job submitted on any instance
  wakes it at once; the bound keeps reclaims and cancellation prompt.
* **due** — every ``DUE_POLL_S`` at most (sooner when the soonest delayed job is due
  sooner), ``DUE_LUA`` moves the delayed jobs that are due to their streams, once across
  instances; whoever has room claims them as usual.
* **refresh** — every ``lease_s / 4``, ``REFRESH_LUA`` renews the lease of each job this
  instance runs and resets its entry's idle time (``XCLAIM ... JUSTID``), so nobody reclaims
  a job whose owner is alive. It also learns which of them finished elsewhere (cancelled
  through another instance: the local run is cancelled) or were taken over (the lease had
  expired: the local run is cancelled and its events are no longer journalled).

A job's final state is written by :meth:`RedisJournal.mark_finished`, whose script also
acknowledges (``XACK`` + ``XDEL``) the entry and drops the lease: finishing and acknowledging
are one step. If Redis was unreachable when the pool reported the end, the refresh loop writes
the outcome itself once Redis is back (it keeps the lease meanwhile).

Why no job runs twice at once: a job is reclaimed only after its entry was idle for
``lease_s``, and a live owner resets that idle time every ``lease_s / 4``. So ``lease_s`` must
exceed the longest stall of an instance's event loop plus a Redis round trip; an instance cut
off from Redis for longer than ``lease_s`` loses its jobs to another (and stops them on
reconnect). Delivery is at-least-once: a job whose owner died is run again, and its
``attempts`` shows the extra attempt.

Per-task ``max_concurrency`` holds across instances: a claim takes a slot of the task
(``P{slots}:TASK``, kept alive with the job's lease) or, when the task is at its cap, moves the
job off its stream into the task's held set, so the jobs of other tasks behind it are still
read and run. A slot is held from claim until the job finishes (back-offs between attempts
included); finishing frees it and puts one held job back on its stream, and a slot whose
instance died lapses with its lease (see :mod:`perfgate.redis.scripts.limits`).

Cancellation: cancelling ``run`` stops claiming and refreshing; jobs still owned keep their
entries pending, and another instance reclaims them once their lease expires.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from collections.abc import Mapping
from typing import Any, Final

import attrs
import coredis
import coredis.exceptions
import trio

from perfgate.errors import QueueFull, Unavailable, ValidationError
from perfgate.jobs.lifecycle import FINAL_STATES, JobError, JobState
from perfgate.jobs.queue import spec_of
from perfgate.logs import log_event
from perfgate.pool import JobHandle, JobSpec, Pool
from perfgate.priorities import PRIORITIES
from perfgate.readiness import Readiness
from perfgate.redis import codec
from perfgate.redis.client import REDIS_ERRORS
from perfgate.redis.journal import RedisJournal
from perfgate.redis.keys import GROUP
from perfgate.redis.scripts.queue import CLAIM_LUA, REFRESH_LUA, STALE_CONSUMER_MS
from perfgate.store import JobRecord

#: What the loops survive (and retry): Redis away, or a command refused (e.g. while it loads).
_FAILURES: tuple[type[BaseException], ...] = (
    Unavailable,
    coredis.exceptions.RedisError,
    *REDIS_ERRORS,
)
_START_FAILURES: tuple[type[BaseException], ...] = (*_FAILURES, ValueError)

log = logging.getLogger("perfgate.jobs")

POLL_S: Final = 0.05
#: Longest blocking read of the streams; shorter when ``lease_s / 4`` is.
BLOCK_S: Final = 1.0
WAIT_POLL_S: Final = 0.1
BACKLOG_POLL_S: Final = 0.5
ERROR_BACKOFF_S: Final = 0.5
#: The longest a due delayed job waits before an instance moves it to its stream.
DUE_POLL_S: Final = 0.25
#: Refresh ticks a job may stay unfinished in Redis after the pool finished it, before the
#: refresh loop writes the outcome itself (the job service's write is normally first).
FINISH_GRACE_TICKS: Final = 2
#: How many jobs taken over by another instance we remember (to ignore their local events).
MAX_LOST: Final = 10_000


class BacklogCount:
    """The shared streams' length as this instance knows it: the last sample, plus its own
    accepts that no sample has seen yet.

    A sample's reads take several round trips. Accepts made before they began are in the
    sample (their entries were appended first); accepts made while they ran may or may not
    be, so they stay counted until the next sample: counted twice for a while, never
    missed. (Zeroing the count when a sample *began* lost the accepts made before it until
    it ended, which let one submit too many past ``max_queue``.)
    """

    __slots__ = ("accepted", "sampled")

    def __init__(self) -> None:
        self.sampled = 0
        self.accepted = 0

    @property
    def total(self) -> int:
        return self.sampled + self.accepted

    def begin(self) -> int:
        """A sample's reads start: the accepts they will see (pass to :meth:`end`)."""
        return self.accepted

    def end(self, sampled: int, seen: int) -> None:
        """The sample read ``sampled`` entries; ``seen`` is what :meth:`begin` returned."""
        self.sampled = sampled
        self.accepted -= seen


def consumer_name() -> str:
    """Unique per process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@attrs.define
class _Owned:
    handle: JobHandle
    done_ticks: int = 0


class RedisJobQueue:
    """The :class:`~perfgate.jobs.queue.JobQueue` shared through Redis.

    Start ``await nursery.start(queue.run)`` after the job service; it claims only while
    ``readiness.accepting`` (so not while starting, draining, or while Redis is down).
    ``capacity`` caps the jobs this instance holds at once (running or waiting in its pool).
    """

    wait_poll_s: float | None = WAIT_POLL_S
    moves_due_jobs: bool = True

    def __init__(
        self,
        client: coredis.Redis[str],
        *,
        pool: Pool,
        journal: RedisJournal,
        readiness: Readiness,
        lease_s: float,
        capacity: int,
        consumer: str | None = None,
        poll_s: float = POLL_S,
        max_concurrency: Mapping[str, int] | None = None,
    ) -> None:
        if lease_s <= 0 or capacity < 1:
            raise ValueError("lease_s must be > 0 and capacity >= 1")
        self.pool = pool
        self.journal = journal
        self.readiness = readiness
        self.lease_s = lease_s
        self.capacity = capacity
        self.consumer = consumer or consumer_name()
        self.poll_s = poll_s
        #: Per task, its jobs running at once across every instance (see the module doc).
        self.max_concurrency = dict(max_concurrency or {})
        self._caps_json = json.dumps(self.max_concurrency, sort_keys=True)
        #: Per capped task, its jobs held back by the cap (sampled with the backlog).
        self.held: dict[str, int] = {}
        self._prefix = journal.prefix
        self._client = client
        self._backlog = BacklogCount()
        self._claim = client.register_script(CLAIM_LUA)
        self._refresh = client.register_script(REFRESH_LUA)
        self._owned: dict[str, _Owned] = {}
        self._lost: dict[str, None] = {}
        #: Set when a job of this pool finishes (room) or one is submitted here.
        self._wake = trio.Event()
        #: Jobs this instance started whose pool run has not finished yet.
        self._live = 0
        self._nursery: trio.Nursery | None = None
        self.block_s = min(BLOCK_S, lease_s / 4)
        self._next_reclaim = 0.0
        #: Whether the next claim creates the consumer group where it is missing: the first
        #: one, and the one after a failed claim (the group is not re-created every call).
        self._ensure_groups = True
        self.claimed = 0
        self.reclaimed = 0
        self.taken_over = 0
        self.errors = 0

    # -- the JobQueue interface -----------------------------------------------------------

    def check_room(self, reserved: int) -> None:
        """The shared streams hold at most ``[pool] max_queue`` jobs (queued or running), for
        the whole deployment: past it, submits get 429. The length is sampled every
        ``BACKLOG_POLL_S`` and this instance's accepts since then are added, so only submits
        on *other* instances within one sample may overshoot; the bound still holds Redis's
        memory."""
        limit = self.pool.config.max_queue
        if self._backlog.total + reserved >= limit:
            raise QueueFull(f"the shared job queue is full ({limit} jobs)", retry_after_s=1.0)

    def submit(self, spec: JobSpec) -> None:
        """The journal's create already appended the job to its stream: claim it now."""
        self._backlog.accepted += 1
        self._wake.set()

    def owns_events(self, job_id: str) -> bool:
        return job_id not in self._lost

    def stats(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "owned": len(self._owned),
            "claimed": self.claimed,
            "reclaimed": self.reclaimed,
            "taken_over": self.taken_over,
            "errors": self.errors,
            "backlog": self._backlog.total,
            "held": dict(self.held),
        }

    # -- lifetime ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Claim and refresh until cancelled (see the module docstring)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._refresh_loop)
            nursery.start_soon(self._backlog_loop)
            nursery.start_soon(self._due_loop)
            task_status.started()
            await self._claim_loop()

    async def _claim_loop(self) -> None:
        lease_ms = int(self.lease_s * 1000)
        while True:
            room = self._room()
            if room <= 0 or not self.readiness.accepting:
                # A finished job sets _wake; the timeout only covers readiness coming back.
                with trio.move_on_after(self.poll_s):
                    await self._wake.wait()
                self._wake = trio.Event()
                continue
            now = trio.current_time()
            reclaim = now >= self._next_reclaim
            if reclaim:
                self._next_reclaim = now + self.lease_s / 2
            self._wake = trio.Event()
            try:
                reply: Any = await self._claim(
                    args=[
                        self._prefix,
                        GROUP,
                        self.consumer,
                        room,
                        lease_ms,
                        lease_ms if reclaim else 0,
                        STALE_CONSUMER_MS,
                        self._caps_json,
                        "1" if self._ensure_groups else "0",
                    ]
                )
                self._ensure_groups = False
            except _FAILURES as exc:
                self._ensure_groups = True  # e.g. NOGROUP: Redis lost its data
                self._failed("claim", exc)
                await trio.sleep(ERROR_BACKOFF_S)
                continue
            claimed, tails = reply
            for job_id, fields in claimed:
                try:
                    await self._start(codec.decode_record(str(job_id), codec.pairs(fields)))
                except _START_FAILURES as exc:
                    # Not started: its entry stays pending, reclaimed once the lease lapses.
                    self._failed("start", exc)
            if not claimed and not self._wake.is_set():
                await self._wait_for_entries([str(tail) for tail in tails])

    async def _wait_for_entries(self, tails: list[str]) -> None:
        """Block until an entry newer than ``tails`` (one id per priority stream) is added,
        for at most :attr:`block_s`. A blocking command holds its own connection; cancelling
        it drops that connection (coredis), so cancellation stays prompt."""
        streams = {
            self.journal.keys.stream(priority): tail
            for priority, tail in zip(PRIORITIES, tails, strict=True)
        }
        try:
            with trio.move_on_after(self.block_s + 1.0):  # should the reply never come
                # BLOCK 0 would mean forever: at least 1 ms.
                block_ms = max(1, int(self.block_s * 1000))
                await self._client.xread(streams, count=1, block=block_ms)
        except _FAILURES as exc:
            self._failed("block", exc)
            await trio.sleep(ERROR_BACKOFF_S)

    async def _backlog_loop(self) -> None:
        """Sample the streams' total length (entries are deleted when their job finishes)."""
        keys = [self.journal.keys.stream(priority) for priority in PRIORITIES]
        while True:
            seen = self._backlog.begin()
            try:
                total = 0
                for key in keys:
                    total += int(await self._client.xlen(key))
                held = {
                    task: int(await self._client.zcard(self.journal.keys.held(task)))
                    for task in self.max_concurrency
                }
                self.held = {task: n for task, n in held.items() if n}
                self._backlog.end(total + sum(held.values()), seen)
            except _FAILURES as exc:
                self._failed("backlog", exc)
            await trio.sleep(BACKLOG_POLL_S)

    async def _due_loop(self) -> None:
        """Move due delayed jobs to their streams (see the module docstring)."""
        while True:
            wait_s = DUE_POLL_S
            try:
                moved, soonest = await self.journal.move_due()
                if moved:
                    self._wake.set()
                    continue  # there may be more due: at once
                if soonest is not None:
                    wait_s = min(DUE_POLL_S, max(0.0, soonest - self.journal.clock()))
            except _FAILURES as exc:
                self._failed("due", exc)
                wait_s = ERROR_BACKOFF_S
            await trio.sleep(wait_s)

    def _room(self) -> int:
        return max(0, min(self.capacity - self._live, self.pool.queue_room()))

    async def _watch(self, handle: JobHandle) -> None:
        """Free the job's place (and wake the claim loop) as soon as its pool run ends."""
        try:
            await handle.wait()
        except Unavailable:
            pass  # the pool shut down
        finally:
            self._live -= 1
            self._wake.set()

    async def _start(self, record: JobRecord) -> None:
        owned = self._owned.get(record.id)
        if owned is not None and owned.handle.outcome is None:
            return  # our own entry, reclaimed after a pause: it is still running here
        self._owned.pop(record.id, None)  # a run that ended here: the job was run again
        self._lost.pop(record.id, None)
        spec = spec_of(record)
        try:
            handle = self.pool.submit(spec)
        except ValidationError as exc:
            # The task was removed from (or changed in) this instance's configuration.
            error = JobError("Unrunnable", f"cannot run here: {exc.message}")
            await self.journal.mark_finished(record.id, JobState.FAILED, error=error.to_json())
            return
        except (QueueFull, Unavailable, ValueError) as exc:
            # Not taken: the entry stays pending and is reclaimed once its lease runs out.
            log_event(log, logging.INFO, "claimed job not started", job=record.id, error=str(exc))
            return
        self._owned[record.id] = _Owned(handle)
        self._live += 1
        assert self._nursery is not None
        self._nursery.start_soon(self._watch, handle)
        self.claimed += 1
        if record.attempts:
            self.reclaimed += 1
            log_event(log, logging.INFO, "reclaimed job", job=record.id, attempts=record.attempts)

    async def _refresh_loop(self) -> None:
        lease_ms = int(self.lease_s * 1000)
        while True:
            await trio.sleep(self.lease_s / 4)
            ids = list(self._owned)
            if not ids:
                continue
            try:
                states: Any = await self._refresh(
                    args=[self._prefix, GROUP, self.consumer, lease_ms, *ids]
                )
            except _FAILURES as exc:
                self._failed("refresh", exc)
                continue
            for job_id, state in zip(ids, states, strict=True):
                await self._settle(job_id, str(state))

    async def _settle(self, job_id: str, state: str) -> None:
        """Act on what Redis says of a job we run: see the module docstring."""
        owned = self._owned.get(job_id)
        if owned is None:
            return
        if state in FINAL_STATES or state == "gone":
            del self._owned[job_id]
            self.pool.cancel(job_id)  # finished elsewhere (cancelled): stop it here too
        elif state == "lost":
            del self._owned[job_id]
            self.taken_over += 1
            self._lost[job_id] = None
            while len(self._lost) > MAX_LOST:
                del self._lost[next(iter(self._lost))]
            log_event(log, logging.WARNING, "job taken over by another instance", job=job_id)
            self.pool.cancel(job_id)
        elif owned.handle.outcome is not None:
            outcome = owned.handle.outcome
            owned.done_ticks += 1
            if owned.done_ticks > FINISH_GRACE_TICKS:
                # The pool's final event was not journalled (Redis was away): write it now.
                try:
                    await self.journal.mark_finished(
                        job_id, outcome.state, result=outcome.result, error=outcome.error
                    )
                except _FAILURES as exc:
                    self._failed("finish", exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        level = logging.DEBUG if isinstance(exc, (Unavailable, *REDIS_ERRORS)) else logging.WARNING
        log.log(level, "redis queue %s failed: %s", what, exc)
