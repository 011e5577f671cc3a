"""The named transitions both journals derive from their one ``apply``
(perfgate.store.shortcuts), and the progress value they record."""

from __future__ import annotations

import math
from typing import Any

import pytest

from perfgate.jobs.lifecycle import JobInput
from perfgate.store.record import JobRecord
from perfgate.store.shortcuts import TransitionShortcuts, progress_value


class Recorder(TransitionShortcuts):
    def __init__(self) -> None:
        self.calls: list[tuple[str, JobInput, dict[str, Any]]] = []

    async def apply(self, job_id: str, job_input: JobInput, **outcome: Any) -> JobRecord | None:
        self.calls.append((job_id, job_input, outcome))
        return None


async def test_each_shortcut_is_one_lifecycle_input() -> None:
    journal = Recorder()
    await journal.mark_running("a")
    await journal.mark_retrying("b", error={"type": "E"})
    await journal.mark_finished("c", "succeeded", result=1, cached=True)
    await journal.mark_finished("d", "dead", error="e")
    await journal.cancel("e")
    assert journal.calls == [
        ("a", JobInput.START, {}),
        ("b", JobInput.RETRY, {"error": {"type": "E"}}),
        ("c", JobInput.SUCCEED, {"result": 1, "error": None, "cached": True}),
        ("d", JobInput.DIE, {"result": None, "error": "e", "cached": False}),
        ("e", JobInput.CANCEL, {}),
    ]


@pytest.mark.parametrize("state", ["running", "queued", "bogus"])
async def test_finishing_into_a_state_that_is_not_final_is_refused(state: str) -> None:
    journal = Recorder()
    with pytest.raises(ValueError):
        await journal.mark_finished("j", state)
    assert journal.calls == []


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(0.5, 0.5), (-1, 0.0), (7, 1.0), (math.nan, 0.0), (math.inf, 0.0), (-math.inf, 0.0)],
)
def test_progress_is_clamped_and_never_not_a_number(fraction: float, expected: float) -> None:
    assert progress_value(fraction, None) == (expected, None)


def test_a_progress_message_is_text() -> None:
    assert progress_value(1, 42) == (1.0, "42")  # type: ignore[arg-type]
