"""The service's lifecycle as one small state machine: starting → ready → draining → stopped.

``/readyz`` reads it; the supervisor moves it. Pure (no trio): the supervisor owns the events.
"""

from __future__ import annotations

import enum

import attrs


class Phase(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    STOPPED = "stopped"


#: What a 503 for "not ready" (starting, draining, a dependency down) tells a client to wait.
RETRY_AFTER_S = 1.0

_ORDER = [Phase.STARTING, Phase.READY, Phase.DRAINING, Phase.STOPPED]


@attrs.define
class Readiness:
    """Moves forward only: a draining service never becomes ready again.

    ``dependencies`` holds the names of dependencies currently down (e.g. a broker); while any
    is down the service is not ready, whatever its phase.
    """

    phase: Phase = Phase.STARTING
    dependencies_down: set[str] = attrs.field(factory=set)

    def advance(self, phase: Phase) -> None:
        if _ORDER.index(phase) > _ORDER.index(self.phase):
            self.phase = phase

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY and not self.dependencies_down

    @property
    def stopping(self) -> bool:
        """Draining or stopped: connections should close after their response."""
        return self.phase in (Phase.DRAINING, Phase.STOPPED)

    @property
    def accepting(self) -> bool:
        """Whether new work may be accepted (submits, publishes)."""
        return self.ready

    def reason(self) -> str:
        if self.phase is not Phase.READY:
            return str(self.phase.value)
        if self.dependencies_down:
            return "dependency down: " + ", ".join(sorted(self.dependencies_down))
        return "ready"
