"""Attempts and retries: a Python attempt's end, a command attempt, and what follows each.

A Python attempt has no task of its own (its worker's reader reports its start and end); a
command attempt is one task in the pool's nursery, with its cancel scope and deadline. Either
way :meth:`_Attempts._after_attempt` decides, by the lifecycle table, whether the job is
finished or waits (a back-off task) to be queued again.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from perfgate.jobs import lifecycle
from perfgate.jobs.lifecycle import (
    JobError,
    JobInput,
    ProgressEvent,
)
from perfgate.pool.backoff import backoff_delay_s
from perfgate.pool.books import _Books, _internal_error, _Job
from perfgate.pool.command import run_command
from perfgate.pool.process import describe_exit
from perfgate.pool.template import render_argv
from perfgate.pool.validation import check_args
from perfgate.pool.worker import Attempt, Worker

log = logging.getLogger("perfgate.pool")


class _Attempts(_Books):
    """Ends of attempts, retries and the command path (see the module docstring)."""

    def _python_ended(self, job: _Job, worker: Worker, attempt: Attempt) -> None:
        """A Python attempt is over (see :class:`Attempt` for how): settle its worker and
        decide the job's fate. Synchronous, called from the worker's reader (or by cancel())."""
        if self._closing:
            return  # shutdown: the job is left unfinished, for the pool's exit to interrupt
        job.scope = job.attempt = job.worker = None
        worker.assigned -= 1
        # After a done frame the reader dispatches right away; otherwise wake the dispatcher.
        self._crew.settle(worker, wake=False)
        if attempt.done is None:
            self._wakeup.unpark_all()
        if not attempt.is_started:
            if job.cancel_requested:
                self._finish(job, JobInput.CANCEL, error=lifecycle.cancelled_error())
            else:  # sent to a worker that died before starting it: not an attempt, run it again
                self._requeue(job)
            return
        try:
            result, error = self._python_outcome(job, attempt)
        except Exception as exc:
            log.exception("job %s: internal error", job.spec.id)
            result, error = None, _internal_error(exc)
        self._after_attempt(job, result, error)

    def _python_outcome(self, job: _Job, attempt: Attempt) -> tuple[Any, JobError | None]:
        stopped = self._mark_ended(job, job.attempt_started, timed_out=attempt.interrupted)
        if attempt.interrupted:
            return None, stopped
        if attempt.crash is not None:
            self._stats.jobs["crashed"] += 1
            info = dict(attempt.crash.info)
            message = str(info.pop("message", attempt.crash))
            return None, JobError("WorkerCrashed", message, kind="crash", details=info)
        done = attempt.done or {}
        if done.get("ok"):
            return done.get("result"), None
        for line in str(done.get("traceback", "")).splitlines():
            self._emit_log(job, "task", line)
        return None, JobError.from_json(
            done.get("error") or {"type": "Error", "message": "task failed"}
        )

    async def _interrupted(self, worker: Worker, head: Attempt | None) -> None:
        """A worker's watch fired: its running job timed out or was cancelled. Its state is
        unknown, so it is stopped (shielded, ``kill_grace_s``) before the job ends."""
        job = self._jobs.get(head.job_id) if head is not None else None
        if self._closing:
            reason = "shutdown"
        elif job is not None and job.cancel_requested:
            reason = "cancelled"
        else:
            reason = "timeout"
        await self._crew.retire(worker, reason, grace_s=self.config.kill_grace_s)

    def _on_frame(self, job: _Job, message: dict[str, Any]) -> None:
        kind = message.get("ev")
        if kind == "progress":
            try:
                fraction = float(message.get("fraction", 0.0))
            except (TypeError, ValueError):
                return  # not a number: dropped, as the journal would refuse it
            self._emit(job.spec.id, ProgressEvent(fraction, str(message.get("message", ""))))
        elif kind == "log":
            self._emit_log(job, "task", str(message.get("line", "")))

    def _after_attempt(self, job: _Job, result: Any, error: JobError | None) -> None:
        self._release_slot(job)
        job_input = lifecycle.after_attempt(
            error=error,
            attempts=job.attempts,
            max_retries=job.max_retries,
            cancel_requested=job.cancel_requested,
        )
        if job_input is not JobInput.RETRY:
            self._finish(job, job_input, result=result, error=error)
            return
        self._stats.jobs["retried"] += 1
        delay = backoff_delay_s(
            job.attempts,
            base_s=self.config.retry_backoff_s,
            cap_s=self.config.retry_backoff_max_s,
        )
        job.where = "backoff"
        self._emit_state(job, JobInput.RETRY, error=error, retry_in_s=delay)
        assert self._nursery is not None
        self._nursery.start_soon(self._requeue_after, job, delay)

    async def _requeue_after(self, job: _Job, delay_s: float) -> None:
        with trio.CancelScope() as scope:
            job.scope = scope
            if job.cancel_requested:
                scope.cancel()
            await trio.sleep(delay_s)
        job.scope = None
        if job.cancel_requested:
            self._finish(job, JobInput.CANCEL, error=lifecycle.cancelled_error())
            return
        self._requeue(job)

    # -- the command path -----------------------------------------------------------------

    async def _run_attempt(self, job: _Job) -> None:
        """A command attempt, from start to its outcome."""
        try:
            result, error = await self._attempt_command(job)
        except Exception as exc:
            # A bug of ours must fail this job, not the pool and every other job.
            log.exception("job %s: internal error", job.spec.id)
            result, error = None, _internal_error(exc)
        finally:
            self._wakeup.unpark_all()
        self._after_attempt(job, result, error)

    async def _attempt_command(self, job: _Job) -> tuple[Any, JobError | None]:
        """Run a command attempt under the job's timeout and cancel scope."""
        assert job.task.command is not None
        argv = render_argv(
            job.task.command,
            check_args(job.task, job.spec.args),
            options_allowed=job.task.options_allowed,
        )
        started = self._mark_started(job)
        error: JobError | None = None
        try:
            with trio.CancelScope() as job.scope:
                if job.cancel_requested:
                    job.scope.cancel()
                with trio.move_on_after(job.timeout_s) as timeout_scope:
                    try:
                        returncode = await run_command(
                            argv,
                            on_line=lambda stream, line: self._emit_log(job, stream, line),
                            max_line_bytes=self.config.max_log_line_bytes,
                            kill_grace_s=self.config.kill_grace_s,
                        )
                    except OSError as exc:
                        error = JobError("SpawnError", str(exc), kind="crash")
                    else:
                        if returncode != 0:
                            exit_info = describe_exit(returncode)
                            message = str(exit_info.pop("message"))
                            error = JobError(
                                "CommandFailed", message, kind="exit", details=exit_info
                            )
        finally:
            job.scope = None
            self._commands_running -= 1
        stopped = self._mark_ended(job, started, timed_out=timeout_scope.cancelled_caught)
        return None, stopped or error
