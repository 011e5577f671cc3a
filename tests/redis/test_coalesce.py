"""The coalescer: concurrent calls share one send, answers and errors fan back, and a
cancelled caller leaves the others whole."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio
import trio.testing

from perfgate.redis.coalesce import Coalescer


class Recorder:
    """A ``send`` that records each batch; it can be held open, or made to fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate: trio.Event | None = None
        self.error: Exception | None = None
        self.short = False

    async def send(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        if self.gate is not None:
            await self.gate.wait()
        else:
            await trio.sleep(0.001)
        if self.error is not None:
            raise self.error
        answers = [item * 10 for item in items]
        return answers[:-1] if self.short else answers


async def gather(coalescer: Coalescer[int, int], items: Sequence[int]) -> dict[int, object]:
    answers: dict[int, object] = {}

    async def one(item: int) -> None:
        try:
            answers[item] = await coalescer.call(item)
        except Exception as exc:
            answers[item] = exc

    async with trio.open_nursery() as nursery:
        for item in items:
            nursery.start_soon(one, item)
    return answers


async def test_concurrent_calls_share_one_send_and_each_gets_its_answer() -> None:
    recorder = Recorder()
    coalescer: Coalescer[int, int] = Coalescer(recorder.send)
    answers = await gather(coalescer, range(20))
    assert answers == {i: i * 10 for i in range(20)}
    assert len(recorder.batches) == 1 and sorted(recorder.batches[0]) == list(range(20))
    assert (coalescer.batches, coalescer.calls) == (1, 20)


async def test_calls_made_while_a_batch_is_in_flight_form_the_next_batch() -> None:
    recorder = Recorder()
    recorder.gate = trio.Event()
    coalescer: Coalescer[int, int] = Coalescer(recorder.send)
    answers: dict[int, int] = {}

    async def one(item: int) -> None:
        answers[item] = await coalescer.call(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, 1)
        await trio.testing.wait_all_tasks_blocked()
        assert recorder.batches == [[1]]
        for item in (2, 3, 4):
            nursery.start_soon(one, item)
        await trio.testing.wait_all_tasks_blocked()
        assert recorder.batches == [[1]]  # waiting for the batch in flight
        recorder.gate.set()
    assert answers == {1: 10, 2: 20, 3: 30, 4: 40}
    assert recorder.batches[0] == [1] and sorted(recorder.batches[1]) == [2, 3, 4]


async def test_a_batch_is_at_most_max_batch_calls() -> None:
    recorder = Recorder()
    coalescer: Coalescer[int, int] = Coalescer(recorder.send, max_batch=3)
    answers = await gather(coalescer, range(7))
    assert answers == {i: i * 10 for i in range(7)}
    assert all(len(batch) <= 3 for batch in recorder.batches)
    assert sorted(i for batch in recorder.batches for i in batch) == list(range(7))


async def test_an_error_of_the_send_is_every_caller_of_that_batch_s_error() -> None:
    recorder = Recorder()
    recorder.error = ConnectionError("redis went away")
    coalescer: Coalescer[int, int] = Coalescer(recorder.send)
    answers = await gather(coalescer, range(5))
    assert all(isinstance(answers[i], ConnectionError) for i in range(5))
    recorder.error = None  # the next batch is unaffected
    assert await coalescer.call(7) == 70


async def test_an_answer_of_the_wrong_length_fails_the_batch() -> None:
    recorder = Recorder()
    recorder.short = True
    coalescer: Coalescer[int, int] = Coalescer(recorder.send)
    answers = await gather(coalescer, range(3))
    assert all(isinstance(answers[i], RuntimeError) for i in range(3))


async def test_a_waiting_caller_cancelled_before_its_batch_is_never_sent() -> None:
    recorder = Recorder()
    recorder.gate = trio.Event()
    coalescer: Coalescer[int, int] = Coalescer(recorder.send)
    answers: dict[int, int] = {}

    async def one(item: int) -> None:
        answers[item] = await coalescer.call(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, 1)  # leads; its batch is held in flight
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(one, 2)
        cancelled = trio.CancelScope()

        async def doomed() -> None:
            with cancelled:
                await coalescer.call(50)

        nursery.start_soon(doomed)
        await trio.testing.wait_all_tasks_blocked()
        cancelled.cancel()
        await trio.testing.wait_all_tasks_blocked()
        recorder.gate.set()
    assert answers == {1: 10, 2: 20}
    assert all(50 not in batch for batch in recorder.batches)


async def test_a_cancelled_caller_handed_the_lead_passes_it_on() -> None:
    recorder = Recorder()
    recorder.gate = trio.Event()
    coalescer: Coalescer[int, int] = Coalescer(recorder.send, max_batch=1)
    answers: dict[int, int] = {}
    scopes: dict[int, trio.CancelScope] = {}

    async def one(item: int) -> None:
        with scopes.setdefault(item, trio.CancelScope()):
            answers[item] = await coalescer.call(item)

    async with trio.open_nursery() as nursery:
        for item in (1, 2, 3):
            nursery.start_soon(one, item)
            await trio.testing.wait_all_tasks_blocked()
        # 1 leads with [1] in flight; 2 is next in line to lead, 3 after it
        scopes[2].cancel()
        await trio.testing.wait_all_tasks_blocked()
        recorder.gate.set()
    assert answers == {1: 10, 3: 30}
    assert recorder.batches == [[1], [3]]


async def test_a_leader_cancelled_mid_flight_still_answers_its_batch() -> None:
    recorder = Recorder()
    recorder.gate = trio.Event()
    coalescer: Coalescer[int, int] = Coalescer(recorder.send)
    answers: dict[int, int] = {}
    lead = trio.CancelScope()

    async def leader() -> None:
        with lead:
            await coalescer.call(1)

    async def follower(item: int) -> None:
        answers[item] = await coalescer.call(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(leader)
        nursery.start_soon(follower, 2)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(recorder.batches[0]) == [1, 2]
        lead.cancel()  # shielded: the batch stays in flight for the follower
        await trio.testing.wait_all_tasks_blocked()
        recorder.gate.set()
    assert answers == {2: 20}


def test_max_batch_must_be_positive() -> None:
    async def send(items: Sequence[int]) -> list[int]:
        return list(items)

    with pytest.raises(ValueError):
        Coalescer(send, max_batch=0)
