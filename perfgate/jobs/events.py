"""Pool events, from the pool's report to the journal and the job's channel.

:class:`PoolEvents` is the pool's event sink: the pool reports each typed event
(:mod:`perfgate.jobs.lifecycle`) synchronously with :meth:`PoolEvents.put`. It is built first
and handed to both the pool (as ``on_event``) and the job service, so neither waits for the
other to exist (docs/architecture.md, the task tree).

:class:`EventPump` applies them in order, from one task: it writes the journal first and
publishes the event's JSON to ``jobs:{id}`` second, so a subscriber never sees a state the
journal does not hold (the journal refuses what the lifecycle table refuses). Events are
applied in groups: each job's events in order, different jobs' concurrently, so the journal
commits a group's transitions together (one fsync) instead of one commit per event.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import trio

from perfgate.config import Config
from perfgate.jobs.durable import JOURNAL_FAILURES, write_durably
from perfgate.jobs.lifecycle import (
    LogEvent,
    PoolEvent,
    ProgressEvent,
    ResultEvent,
    StateEvent,
)
from perfgate.jobs.queue import JobQueue
from perfgate.logs import log_event
from perfgate.store import (
    FINISHED_STATES,
    QUEUED,
    RETRYING,
    RUNNING,
    SCHEDULED,
    SUCCEEDED,
    JobJournal,
    JobRecord,
)

log = logging.getLogger("perfgate.jobs")

Publish = Callable[[str, Any], Awaitable[Any]]
#: Progress events beyond this many pending are dropped (the next one supersedes them anyway);
#: state, result, error and log events are never dropped.
MAX_PENDING_PROGRESS = 10_000
#: Pool events applied as one group (each job's in order, jobs concurrently).
APPLY_GROUP_MAX = 1024


class ResultCacheLike(Protocol):
    """What the job service needs of :class:`perfgate.cache.ResultCache`."""

    async def get(self, task: str, args: Mapping[str, Any], default: Any = None) -> Any: ...
    async def put(self, task: str, args: Mapping[str, Any], result: Any) -> Any: ...


class PoolEvents:
    """The events the pool reported and nobody applied yet, in order."""

    def __init__(self) -> None:
        self._events: deque[tuple[str, PoolEvent]] = deque()
        self._progress_pending = 0
        self.progress_dropped = 0
        self._ready = trio.Event()

    def __len__(self) -> int:
        return len(self._events)

    def put(self, job_id: str, event: PoolEvent) -> None:
        """The pool's ``on_event``: synchronous, never blocks. A progress event beyond
        :data:`MAX_PENDING_PROGRESS` pending is dropped (and counted)."""
        if isinstance(event, ProgressEvent):
            if self._progress_pending >= MAX_PENDING_PROGRESS:
                self.progress_dropped += 1
                return
            self._progress_pending += 1
        self._events.append((job_id, event))
        self._ready.set()

    async def wait(self) -> None:
        """Until an event was put since the last call returned."""
        await self._ready.wait()
        self._ready = trio.Event()

    def take(self, limit: int) -> list[tuple[str, PoolEvent]]:
        """The first ``limit`` events (or fewer); give back what was not applied."""
        return [self._events.popleft() for _ in range(min(len(self._events), limit))]

    def give_back(self, group: list[tuple[str, PoolEvent]], applied: list[bool]) -> None:
        """Put the unapplied events of ``group`` back in front, in their order. Synchronous,
        so it is safe in a ``finally`` on the way out of a cancellation."""
        self._events.extendleft(
            reversed([item for item, done in zip(group, applied, strict=True) if not done])
        )
        for (_job_id, event), done in zip(group, applied, strict=True):
            if done and isinstance(event, ProgressEvent):
                self._progress_pending -= 1


class EventPump:
    """Applies :class:`PoolEvents` to the journal and the job channels."""

    def __init__(
        self,
        events: PoolEvents,
        *,
        config: Config,
        journal: JobJournal,
        publish: Publish,
        queue: JobQueue,
        cache: ResultCacheLike | None,
        on_final: Callable[[JobRecord], Awaitable[None]],
    ) -> None:
        self.events = events
        self._config = config
        self._journal = journal
        self._publish = publish
        self._queue = queue
        self._cache = cache
        self._on_final = on_final
        self._results: dict[str, Any] = {}
        self._lock = trio.Lock()

    async def run(self) -> None:
        """Apply events as they come, until cancelled."""
        while True:
            await self.events.wait()
            async with self._lock:
                await self._apply_pending()

    async def settle(self) -> None:
        """Apply every event reported so far and wait until the journal committed them.

        Works whether or not :meth:`run` is still applying events (it waits for the batch in
        hand, then applies the rest itself)."""
        async with self._lock:
            await self._apply_pending()
        await self._journal.flush()

    async def _apply_pending(self) -> None:
        """Apply queued events: a group at a time, each job's events in order, different
        jobs' concurrently, so that their journal writes share a commit.

        An event leaves the queue only once applied, so one interrupted by a cancellation is
        applied again by the next :meth:`settle` (the journal refuses a transition made
        twice), and still in order with the rest of its job's events."""
        while self.events:
            group = self.events.take(APPLY_GROUP_MAX)
            applied = [False] * len(group)
            chains: dict[str, list[int]] = {}
            for index, (job_id, _event) in enumerate(group):
                chains.setdefault(job_id, []).append(index)
            try:
                if len(chains) == 1:
                    await self._apply_chain(group, next(iter(chains.values())), applied)
                else:
                    async with trio.open_nursery() as nursery:
                        for indexes in chains.values():
                            nursery.start_soon(self._apply_chain, group, indexes, applied)
            finally:
                self.events.give_back(group, applied)

    async def _apply_chain(
        self, group: list[tuple[str, PoolEvent]], indexes: list[int], applied: list[bool]
    ) -> None:
        """Apply one job's events of a group, in order; contain every failure."""
        for index in indexes:
            job_id, event = group[index]
            try:
                await self._apply(job_id, event)
            except JOURNAL_FAILURES as exc:  # a progress or log line lost, or a publish
                log_event(
                    log,
                    logging.WARNING,
                    "job event not applied",
                    job=job_id,
                    event=type(event).__name__,
                    error=str(exc),
                )
            except Exception as exc:  # contain one job's failure; never stop the pump
                log_event(
                    log,
                    logging.ERROR,
                    "failed to apply job event",
                    exc_info=exc,
                    job=job_id,
                    event=type(event).__name__,
                )
            applied[index] = True

    async def _apply(self, job_id: str, event: PoolEvent) -> None:
        if not self._queue.owns_events(job_id):
            return  # another instance took this job over: its run here is being stopped
        if isinstance(event, ProgressEvent):
            await self._journal.set_progress(job_id, event.fraction, event.message)
        elif isinstance(event, LogEvent):
            await self._journal.append_log(job_id, event.line, event.stream)
        elif isinstance(event, ResultEvent):
            self._results[job_id] = event.result
        elif isinstance(event, StateEvent) and not await self._apply_state(job_id, event):
            return  # the journal refused the transition (e.g. already cancelled)
        await self._publish(f"jobs:{job_id}", event.to_json())

    async def _apply_state(self, job_id: str, event: StateEvent) -> bool:
        state = event.state
        error = None if event.error is None else event.error.to_json()
        journal = self._journal
        if state in (QUEUED, SCHEDULED):
            return True  # created (or due) as the journal holds it: nothing to write
        if state == RUNNING:
            written = await write_durably(journal.mark_running, job_id, job_id=job_id, state=state)
            return written is not None
        if state == RETRYING:
            written = await write_durably(
                functools.partial(journal.mark_retrying, job_id, error=error),
                job_id=job_id,
                state=state,
            )
            return written is not None
        if state in FINISHED_STATES:
            result = self._results.get(job_id)
            record = await write_durably(
                functools.partial(journal.mark_finished, job_id, state, result=result, error=error),
                job_id=job_id,
                state=str(state),
            )
            self._results.pop(job_id, None)
            if record is None:
                return False
            if state == SUCCEEDED and self._cache is not None:
                task = self._config.tasks.get(record.task)
                if task is not None and task.cacheable:
                    await self._cache.put(record.task, record.args, result)
            await self._on_final(record)
            return True
        return True
