"""The garbage collector's policy: thresholds set, start-up frozen, by both entry points."""

from __future__ import annotations

import gc
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from perfgate import gcpolicy
from perfgate.readiness import Phase
from perfgate.supervisor import Supervisor
from tests.conftest import make_config


@pytest.fixture
def saved_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gcpolicy.restore(before)


class Marker:
    """A type of our own, to find its instances among the collector's objects."""


def test_tune_sets_the_thresholds_and_returns_the_old_ones(saved_gc: None) -> None:
    before = gc.get_threshold()
    assert gcpolicy.tune() == before
    assert gc.get_threshold() == gcpolicy.THRESHOLDS
    assert gcpolicy.tune((700, 10, 10)) == gcpolicy.THRESHOLDS


def test_freeze_puts_what_lives_now_out_of_the_collectors_reach(saved_gc: None) -> None:
    early = [Marker() for _ in range(3)]
    frozen = gcpolicy.freeze()
    assert frozen == gc.get_freeze_count() > 0
    later = Marker()
    seen = {id(o) for o in gc.get_objects() if isinstance(o, Marker)}
    assert id(later) in seen  # made after the freeze: collected as usual
    assert not seen & {id(m) for m in early}  # no collection walks them again
    gcpolicy.restore((700, 10, 10))
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == (700, 10, 10)


_PROBE = """
import gc, json, sys
import perfgate.gateway.__main__ as entry
from perfgate import gcpolicy
real = gcpolicy.freeze
def freeze():
    frozen = real()
    print(json.dumps({"threshold": gc.get_threshold(), "frozen": frozen}), flush=True)
    return frozen
gcpolicy.freeze = freeze
entry.main(["--bind", "127.0.0.1:0"])
"""


def test_the_gateway_entry_point_tunes_then_freezes_once_listening() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _PROBE], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    try:
        assert proc.stdout is not None
        probe = json.loads(proc.stdout.readline())
        listening = json.loads(proc.stdout.readline())
        assert tuple(probe["threshold"]) == gcpolicy.THRESHOLDS and probe["frozen"] > 0
        assert listening["url"].startswith("ws://127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_the_supervisor_calls_on_ready_once_when_ready(tmp_path: Path) -> None:
    calls: list[Phase] = []
    supervisor = Supervisor(make_config(tmp_path), handle_signals=False)
    supervisor.on_ready = lambda: calls.append(supervisor.readiness.phase)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        assert calls == [Phase.READY]
        supervisor.request_stop()
    assert calls == [Phase.READY]
