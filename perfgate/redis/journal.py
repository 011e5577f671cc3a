"""The job journal in Redis, shared by every instance on one Redis (docs/architecture.md §6).

The same async interface as :class:`perfgate.store.Journal` (what the job service and the HTTP
API use), over the keys of :mod:`perfgate.redis.keys`, the codec of :mod:`perfgate.redis.codec`
and the scripts of :mod:`perfgate.redis.scripts`. Each write is one
script, atomic in Redis, and durable as far as the Redis deployment's persistence goes.
Concurrent creates and transitions (of different jobs, or of one job's events in order) are
coalesced into one batched script call (:mod:`perfgate.redis.coalesce`): one ``EVALSHA`` for
many jobs, each answered as its own call would be.

Differences from the SQLite journal, by design:

* ``create`` of a queued job also appends it to its priority stream, in the same script: a job
  that was accepted is always on the queue (:mod:`perfgate.redis.queue` runs it).
* ``recover`` returns nothing: jobs of a stopped instance are reclaimed from the streams by
  whichever instance is alive (see the queue), not re-queued at start-up.
* Retention is Redis TTLs: a finished job expires ``result_ttl_s`` after it finished; the
  sweeper only prunes the listing indexes of expired jobs.

Every method raises :class:`~perfgate.errors.Unavailable` (503) while Redis is unreachable.
Each call is a checkpoint; a call cancelled while its script is in flight may or may not have
been applied (a re-submit with the same idempotency key yields the same job either way).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final

import attrs
import coredis
import trio

from perfgate.errors import Conflict, NotFound, PerfgateError, Unavailable, ValidationError
from perfgate.jobs.lifecycle import JobInput
from perfgate.redis import codec, scripts
from perfgate.redis.client import REDIS_ERRORS, redis_unavailable
from perfgate.redis.coalesce import Coalescer
from perfgate.redis.keys import DEFAULT_PREFIX, GROUP, Keys, idempotency_slot, index_member
from perfgate.snapshots import JournalSnapshot
from perfgate.store import paging, retention
from perfgate.store.record import QUEUED, STATES, JobRecord, transition_write
from perfgate.store.shortcuts import TransitionShortcuts, progress_value

_FAILURES: tuple[type[BaseException], ...] = (Unavailable, *REDIS_ERRORS)

log = logging.getLogger("perfgate.store")

MAX_PAGE: Final = 1000
SWEEP_CHUNK: Final = 500


@attrs.frozen
class _Create:
    """One job for ``CREATE_MANY``: where it goes and its encoded fields."""

    job_id: str
    slot: str
    stream: str
    fields: list[str]


@attrs.frozen
class _Transition:
    """One job's transition for ``TRANSITION_MANY``."""

    job_id: str
    allowed: str
    increment: bool
    fields: list[str]


class RedisJournal(TransitionShortcuts):
    """The job journal in Redis. ``client`` is an entered coredis client
    (:func:`perfgate.redis.client.open_redis`); start :meth:`run_sweeper` in a nursery to prune
    the indexes of expired jobs (or use :meth:`open`)."""

    def __init__(
        self,
        client: coredis.Redis[str],
        *,
        max_log_lines: int,
        result_ttl_s: float,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_log_lines < 1 or result_ttl_s <= 0:
            raise ValueError("max_log_lines must be >= 1 and result_ttl_s > 0")
        self.client = client
        self.keys = Keys(prefix)
        self.prefix = prefix
        self.max_log_lines = max_log_lines
        self.result_ttl_s = result_ttl_s
        self._ttl_ms = max(1, int(result_ttl_s * 1000))
        self._clock = clock
        self._create_many = client.register_script(scripts.CREATE_MANY_LUA)
        self._transition_many = client.register_script(scripts.TRANSITION_MANY_LUA)
        # Concurrent creates and transitions go to Redis as one script call each
        # (perfgate/redis/coalesce.py): a job's own calls stay in its order.
        self._creates: Coalescer[_Create, Any] = Coalescer(self._create_batch)
        self._transitions: Coalescer[_Transition, Any] = Coalescer(self._transition_batch)
        self._progress = client.register_script(scripts.PROGRESS_LUA)
        self._log = client.register_script(scripts.LOG_LUA)
        self._list = client.register_script(scripts.LIST_LUA)
        self._sweep = client.register_script(scripts.SWEEP_LUA)
        self._due = client.register_script(scripts.DUE_LUA)
        self.events_lost = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, client: coredis.Redis[str], *, max_log_lines: int, result_ttl_s: float
    ) -> AsyncIterator[RedisJournal]:
        """The journal with its sweeper running until the block exits."""
        journal = cls(client, max_log_lines=max_log_lines, result_ttl_s=result_ttl_s)
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run_sweeper)
            try:
                yield journal
            finally:
                nursery.cancel_scope.cancel()

    # -- writes -----------------------------------------------------------------------------

    async def create(
        self,
        record: JobRecord,
        *,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """Store a new job (and enqueue it, if queued); return it and ``True``.

        With an ``idempotency_key`` that the record's tenant gave a job that still exists (keys
        are per tenant): nothing is written, the earlier job is returned with ``False`` when
        ``fingerprint`` matches, and :class:`~perfgate.errors.Conflict` is raised when it
        does not.
        """
        if record.state not in STATES:
            raise ValidationError(f"unknown job state {record.state!r}")
        # Stored with the job, as the SQLite journal does: a replay compares against them.
        record = attrs.evolve(record, idempotency_key=idempotency_key, fingerprint=fingerprint)
        with redis_unavailable("create job"):
            reply = await self._creates.call(self._create_of(record))
        return await self._answer(reply, record, idempotency_key, fingerprint)

    def _create_of(self, record: JobRecord) -> _Create:
        """``record`` (its idempotency key set) as one job of ``CREATE_MANY``: queued ones
        are appended to their priority's stream."""
        stream = self.keys.stream(record.priority) if record.state == QUEUED else ""
        key = record.idempotency_key
        slot = "" if key is None else idempotency_slot(record.tenant, key)
        return _Create(record.id, slot, stream, codec.encode_fields(record))

    async def _create_batch(self, creates: Sequence[_Create]) -> list[Any]:
        """One ``CREATE_MANY`` for concurrent creates: the script's reply per job."""
        keys: list[str] = []
        args: list[Any] = [self.prefix, self._ttl_ms, GROUP]
        for create in creates:
            keys.append(self.keys.job(create.job_id))
            args += [create.job_id, create.slot, create.stream, len(create.fields)]
            args += create.fields
        replies: Any = await self._create_many(keys=keys, args=args)
        return list(replies)

    async def create_many(
        self, jobs: Sequence[tuple[JobRecord, str | None, str | None]]
    ) -> list[tuple[JobRecord, bool] | PerfgateError]:
        """Store several jobs ``(record, idempotency_key, fingerprint)`` in one script (atomic
        in Redis, one round trip); answer per job, in order, as :meth:`create` would: the
        job and whether it was created, or the :class:`~perfgate.errors.PerfgateError` that
        job alone met (an idempotency conflict)."""
        stored: list[JobRecord] = []
        for record, key, fingerprint in jobs:
            if record.state not in STATES:
                raise ValidationError(f"unknown job state {record.state!r}")
            stored.append(attrs.evolve(record, idempotency_key=key, fingerprint=fingerprint))
        if not jobs:
            return []
        with redis_unavailable("create jobs"):  # one script, not coalesced: created together
            replies = await self._create_batch([self._create_of(record) for record in stored])
        out: list[tuple[JobRecord, bool] | PerfgateError] = []
        for record, reply in zip(stored, replies, strict=True):
            key, fingerprint = record.idempotency_key, record.fingerprint
            try:
                out.append(await self._answer(reply, record, key, fingerprint))
            except (Conflict, Unavailable) as exc:
                out.append(exc)
        return out

    async def _answer(
        self, reply: Any, record: JobRecord, key: str | None, fingerprint: str | None
    ) -> tuple[JobRecord, bool]:
        """What a create script's ``{created, id}`` means for the caller."""
        created, job_id = int(reply[0]), str(reply[1])
        if created:
            return record, True
        earlier = await self.get(job_id)
        if earlier is None:  # expired between the script and this read: a rare race
            raise Unavailable("idempotency key in flux; retry", retry_after_s=1.0)
        if earlier.fingerprint != fingerprint:
            raise Conflict(f"idempotency key {key!r} was used for another request")
        return earlier, False

    async def apply(
        self,
        job_id: str,
        job_input: JobInput,
        *,
        result: Any = None,
        error: Any = None,
        cached: bool = False,
    ) -> JobRecord | None:
        """Apply one transition of the lifecycle table: the one place this journal changes a
        job's state (every ``mark_*`` comes here). The script receives the allowed from-states
        of the table's rule for ``job_input`` and refuses the change in any other state.

        Returns the updated job, ``None`` when the table refuses ``job_input`` in the job's
        current state, and raises :class:`~perfgate.errors.NotFound` for an unknown job. A
        final state also acknowledges the job's stream entry and drops its lease.
        """
        write = transition_write(
            job_input, result=result, error=error, cached=cached, now=self._clock()
        )
        # The state is stored as is (the scripts compare it); every other field as JSON.
        fields = {k: str(v) if k == "state" else codec.dumps(v) for k, v in write.fields.items()}
        flat = [item for pair in fields.items() for item in pair]
        allowed = ",".join(sorted(write.from_states))
        with redis_unavailable("update job"):
            reply = await self._transitions.call(
                _Transition(job_id, allowed, write.increment_attempts, flat)
            )
        if reply == -1:
            raise NotFound(f"no job {job_id!r}")
        if reply == 0:
            return None
        return codec.decode_record(job_id, codec.pairs(reply))

    async def _transition_batch(self, transitions: Sequence[_Transition]) -> list[Any]:
        """One ``TRANSITION_MANY`` for concurrent transitions: the script's reply per job."""
        keys: list[str] = []
        args: list[Any] = [self.prefix, self._ttl_ms, GROUP]
        for t in transitions:
            keys.append(self.keys.job(t.job_id))
            args += [t.job_id, t.allowed, "1" if t.increment else "0", len(t.fields), *t.fields]
        replies: Any = await self._transition_many(keys=keys, args=args)
        return list(replies)

    async def set_progress(self, job_id: str, fraction: float, message: str | None = None) -> None:
        """Record a running job's progress; ignored once it is no longer running."""
        fraction, text = progress_value(fraction, message)
        with redis_unavailable("job progress"):
            await self._progress(
                keys=[self.keys.job(job_id)],
                args=[self.prefix, codec.dumps(fraction), codec.dumps(text)],
            )

    async def append_log(self, job_id: str, line: str, stream: str = "stdout") -> None:
        """Append one log line; the job keeps its last ``max_log_lines``."""
        entry = codec.encode_log(self._clock(), str(stream), str(line))
        with redis_unavailable("job log"):
            await self._log(
                keys=[self.keys.job(job_id), self.keys.log(job_id)],
                args=[self.prefix, entry, self.max_log_lines],
            )

    async def flush(self) -> None:
        """Every write is applied when its call returns: nothing to wait for."""

    async def recover(self) -> list[JobRecord]:
        """Nothing to re-queue at start-up: the queue reclaims a stopped instance's jobs."""
        return []

    async def scheduled(self) -> list[JobRecord]:
        """Nothing to re-arm at start-up: delayed jobs wait in Redis (see :meth:`move_due`)."""
        return []

    async def move_due(self, limit: int = 100) -> tuple[int, float | None]:
        """Queue up to ``limit`` delayed jobs that are due by this journal's clock (one script:
        each is moved once across instances). Returns how many, and the soonest due time
        still waiting (``None`` if none)."""
        with redis_unavailable("queue due jobs"):
            reply: Any = await self._due(args=[self.prefix, repr(self._clock()), limit])
        moved, soonest = int(reply[0]), str(reply[1])
        return moved, float(soonest) if soonest else None

    def clock(self) -> float:
        """The wall clock this journal stamps and compares due times with."""
        return self._clock()

    async def sweep(self, now: float) -> int:
        """Prune the listing indexes of jobs that expired before ``now``; return how many."""
        cutoff = now - self.result_ttl_s
        total = 0
        while True:
            with redis_unavailable("sweep"):
                removed: Any = await self._sweep(args=[self.prefix, repr(cutoff), SWEEP_CHUNK])
            total += int(removed)
            if int(removed) < SWEEP_CHUNK:
                return total

    async def run_sweeper(
        self,
        *,
        period_s: float | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Sweep every ``period_s`` until cancelled; a failed sweep is retried next period."""
        period = retention.sweep_period_s(self.result_ttl_s) if period_s is None else period_s
        task_status.started()
        while True:
            await trio.sleep(period)
            try:
                await self.sweep(self._clock())
            except _FAILURES as exc:
                log.warning("redis journal sweep failed: %s", exc)

    # -- reads ------------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobRecord | None:
        with redis_unavailable("get job"):
            fields = await self.client.hgetall(self.keys.job(job_id))
        if not fields:
            return None
        return codec.decode_record(job_id, {str(k): str(v) for k, v in fields.items()})

    async def list_jobs(
        self,
        state: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        tenant: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        """A page of jobs (of ``tenant`` only, unless ``None``), newest first by
        ``(created_at, id)``, and the next page's cursor. A tenant's page is read from that
        tenant's own index: it is as full as a global one."""
        if state is not None and state not in STATES:
            raise ValidationError(f"unknown state {state!r}; one of {', '.join(sorted(STATES))}")
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE}")
        upper = ""
        if cursor is not None:
            created_at, job_id = paging.decode_cursor(cursor)
            upper = index_member(created_at, job_id)
        with redis_unavailable("list jobs"):
            reply: Any = await self._list(
                args=[self.prefix, state or "all", upper, limit, tenant or ""]
            )
        jobs = [codec.decode_record(str(job_id), codec.pairs(fields)) for job_id, fields in reply]
        more = len(jobs) > limit
        jobs = jobs[:limit]
        next_cursor = paging.encode_cursor(jobs[-1].created_at, jobs[-1].id) if more else None
        return jobs, next_cursor

    async def logs(self, job_id: str, *, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Log lines with ``seq > after``, oldest first: ``{"seq", "ts", "stream", "line"}``."""
        if after < 0 or not 1 <= limit <= 10 * MAX_PAGE:
            raise ValidationError("after must be >= 0 and limit between 1 and 10000")
        with redis_unavailable("job logs"):
            entries = await self.client.lrange(self.keys.log(job_id), 0, -1)
        return codec.decode_logs([str(e) for e in entries], after=after, limit=limit)

    async def counts(self) -> dict[str, int]:
        """Jobs per state (expired jobs count until the sweep prunes them)."""
        counts: dict[str, int] = {}
        with redis_unavailable("count jobs"):
            for state in sorted(STATES):
                counts[state] = int(await self.client.zcard(self.keys.index(state)))
        return counts

    def stats(self) -> JournalSnapshot:
        return JournalSnapshot(events_lost=self.events_lost)
