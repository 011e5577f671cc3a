"""The service's phases (perfgate.readiness): forward only, and ready only while every
dependency is up."""

from __future__ import annotations

import pytest

from perfgate.readiness import Phase, Readiness


def test_a_new_service_is_starting_and_not_ready() -> None:
    readiness = Readiness()
    assert readiness.phase is Phase.STARTING
    assert not readiness.ready
    assert not readiness.accepting
    assert not readiness.stopping
    assert readiness.reason() == "starting"


def test_ready_accepts_work() -> None:
    readiness = Readiness()
    readiness.advance(Phase.READY)
    assert readiness.ready
    assert readiness.accepting
    assert readiness.reason() == "ready"


@pytest.mark.parametrize("later", [Phase.DRAINING, Phase.STOPPED])
def test_phases_only_move_forward(later: Phase) -> None:
    readiness = Readiness()
    readiness.advance(later)
    readiness.advance(Phase.READY)
    readiness.advance(Phase.STARTING)
    assert readiness.phase is later
    assert readiness.stopping
    assert not readiness.ready
    assert readiness.reason() == later.value


def test_draining_may_still_become_stopped_but_not_draining_again() -> None:
    readiness = Readiness()
    readiness.advance(Phase.STOPPED)
    readiness.advance(Phase.DRAINING)
    assert readiness.phase is Phase.STOPPED


def test_a_dependency_down_makes_a_ready_service_unready_and_is_named() -> None:
    readiness = Readiness()
    readiness.advance(Phase.READY)
    readiness.dependencies_down |= {"redis", "broker"}
    assert not readiness.ready
    assert not readiness.accepting
    assert not readiness.stopping
    assert readiness.reason() == "dependency down: broker, redis"
    readiness.dependencies_down.clear()
    assert readiness.ready


def test_while_starting_the_phase_is_the_reason_even_with_a_dependency_down() -> None:
    readiness = Readiness(dependencies_down={"redis"})
    assert readiness.reason() == "starting"
