"""Coalescing concurrent calls of one Redis script into one call per batch.

Each Redis command costs perfgate far more CPU in the client (building the request, the
connection pool, the retry policy, the reply) than it costs Redis, and a job makes several
of the same kind (a transition, a publish, a create) while dozens of other jobs make theirs.
A :class:`Coalescer` turns the calls that are concurrent into one call of a batched script
(``TRANSITION_MANY``, ``PUBLISH_MANY``, ``CREATE_MANY``): N jobs per ``EVALSHA``.

No task of its own, so a component that coalesces needs no nursery and no start (a journal
built in a test works as one in a server): the first caller that finds no batch in flight
*leads*. It yields once (one scheduler tick, so that the callers made runnable with it can
join), then sends what is pending as one batch and hands each caller its answer; while its
batch is in flight, new callers wait and form the next batch. When its own call is answered,
the leader hands the lead to the first caller still waiting, so no caller waits on a batch
it is not in for longer than a batch in flight plus its own.

Failure: an exception from ``send`` is every caller of that batch's exception (they were
sent together; whether any of it was applied is as unknown as for one call); an answer of
the wrong length is a :class:`RuntimeError` for each of them.

Cancellation: a caller cancelled before its batch is sent is taken out of the batch (never
sent); one cancelled while its batch is in flight leaves it in flight (as a lone call would:
it may or may not have been applied). The leader sends under a shield, so the others' batch
is never torn off mid-flight by the leader's own cancellation; that delays the leader's
cancellation by at most one round trip (bounded by the client's command timeout).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Generic, TypeVar

import attrs
import trio

T = TypeVar("T")
R = TypeVar("R")

#: Most calls one batch carries (one script's arguments stay a few hundred KiB at most).
MAX_BATCH: Final = 256


@attrs.define(eq=False)
class _Call(Generic[T, R]):
    item: T
    wake: trio.Event = attrs.field(factory=trio.Event)
    #: Set when the lead is handed to this (still waiting) caller.
    lead: bool = False
    done: bool = False
    result: R | None = None
    error: BaseException | None = None

    def answer(self, result: R) -> None:
        self.result, self.done = result, True
        self.wake.set()

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True
        self.wake.set()

    def outcome(self) -> R:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class Coalescer(Generic[T, R]):
    """Batches concurrent :meth:`call` items into one ``send(items) -> answers`` (one
    answer per item, in order). See the module docstring."""

    def __init__(
        self, send: Callable[[Sequence[T]], Awaitable[Sequence[R]]], *, max_batch: int = MAX_BATCH
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._send = send
        self.max_batch = max_batch
        self._pending: list[_Call[T, R]] = []
        self._leading = False
        #: Batches sent, and calls they carried (calls / batches is the mean batch size).
        self.batches = 0
        self.calls = 0

    async def call(self, item: T) -> R:
        """Send ``item`` in the next batch; return its answer (or raise the batch's error)."""
        call: _Call[T, R] = _Call(item)
        self._pending.append(call)
        if not self._leading:
            self._leading = True
            await self._lead(call)
            return call.outcome()
        try:
            await call.wake.wait()
        except BaseException:
            self._abandon(call)
            raise
        if not call.done:  # woken to lead
            await self._lead(call)
        return call.outcome()

    async def _lead(self, own: _Call[T, R]) -> None:
        try:
            while not own.done:
                await trio.lowlevel.checkpoint()  # one tick: let concurrent callers join
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                with trio.CancelScope(shield=True):
                    await self._flush(batch)
        finally:
            if not own.done and own in self._pending:
                self._pending.remove(own)  # cancelled before it was sent
            self._hand_over()

    async def _flush(self, batch: list[_Call[T, R]]) -> None:
        self.batches += 1
        self.calls += len(batch)
        try:
            answers = await self._send([call.item for call in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers for a batch of {len(batch)}")
        except Exception as exc:
            for call in batch:
                call.fail(exc)
        else:
            for call, answer in zip(batch, answers, strict=True):
                call.answer(answer)
        finally:
            for call in batch:  # a BaseException escaped: nobody is left hanging
                if not call.done:
                    call.fail(RuntimeError("the batch was not answered"))

    def _abandon(self, call: _Call[T, R]) -> None:
        """A waiting caller was cancelled: drop its item if not sent; pass on the lead if it
        had just been handed it."""
        if call in self._pending:
            self._pending.remove(call)
        if call.lead and not call.done:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._pending:
            following = self._pending[0]
            following.lead = True
            following.wake.set()
        else:
            self._leading = False
