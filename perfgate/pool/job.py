"""A job as the pool sees it: what to run (:class:`JobSpec`), how it ended (:class:`JobOutcome`),
and how a caller waits for it (:class:`JobHandle`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import trio

from perfgate.errors import Unavailable
from perfgate.jobs.lifecycle import JobState


@attrs.frozen
class JobSpec:
    """What to run.

    ``priority`` None means the task's configured priority; ``timeout_s`` and ``max_retries``
    None mean the task's. ``attempts`` counts attempts already used (restart recovery): a job
    resumed with ``attempts=2`` and ``max_retries=3`` has two attempts left.
    """

    id: str
    task: str
    args: Mapping[str, Any] = attrs.field(factory=dict)
    priority: str | None = None
    timeout_s: float | None = None
    max_retries: int | None = None
    attempts: int = 0


@attrs.frozen
class JobOutcome:
    """How a job ended. ``started_at``/``finished_at`` are wall-clock (``time.time()``);
    ``error`` is as the API shows it (:meth:`perfgate.jobs.lifecycle.JobError.to_json`)."""

    state: JobState
    result: Any = None
    error: Mapping[str, Any] | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None


class JobHandle:
    """Returned by :meth:`Pool.submit`. Wait on it from any task."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.id = spec.id
        #: Where the job is in its lifecycle (:mod:`perfgate.jobs.lifecycle`), as the pool
        #: moves it; the final state once it finished.
        self.state = JobState.QUEUED
        self._outcome: JobOutcome | None = None
        self._interrupted = False
        self._done = trio.Event()

    @property
    def outcome(self) -> JobOutcome | None:
        """The outcome once the job has finished, else None."""
        return self._outcome

    async def wait(self) -> JobOutcome:
        """Wait until the job finishes. A checkpoint; cancelling it leaves the job running.

        Raises :class:`perfgate.errors.Unavailable` if the pool shut down first (the job was
        interrupted, not finished: its journal entry stays resumable).
        """
        await self._done.wait()
        if self._outcome is None:
            raise Unavailable(f"job {self.id}: the pool shut down before it finished")
        return self._outcome

    def _finish(self, outcome: JobOutcome | None) -> None:
        self._outcome = outcome
        if outcome is not None:
            self.state = outcome.state
        self._done.set()
