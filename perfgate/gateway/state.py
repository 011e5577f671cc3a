"""A connection's lifecycle as a table: pure, in the style of h2's ``_transitions``.

::

    OPEN --close--> CLOSING --ended--> CLOSED
      \\--drain--> DRAINING --drained--> CLOSING

``OPEN``: messages are accepted and written. ``DRAINING`` (server shutdown): no new channel
message is accepted; the writer sends what is queued, within the close timeout, then the
connection closes. ``CLOSING``: what is queued is discarded and the close handshake runs.
``CLOSED``: the task tree has ended and subscriptions are gone. The first close request
wins: a later one changes neither the state nor the close code (a drain is bounded anyway).
"""

from __future__ import annotations

import enum


class ConnState(enum.Enum):
    OPEN = "open"
    DRAINING = "draining"
    CLOSING = "closing"
    CLOSED = "closed"

    @property
    def accepts_messages(self) -> bool:
        return self is ConnState.OPEN

    @property
    def writes(self) -> bool:
        """The writer keeps sending what is queued."""
        return self is ConnState.OPEN or self is ConnState.DRAINING


class ConnInput(enum.Enum):
    CLOSE = "close"  # close now: a limit, an error, the peer left
    DRAIN = "drain"  # close once the queue is written: server shutdown
    DRAINED = "drained"  # the queue is written, or the drain's time is up
    ENDED = "ended"  # the connection's task tree is done


_S, _I = ConnState, ConnInput
_TRANSITIONS: dict[tuple[ConnState, ConnInput], ConnState] = {
    (_S.OPEN, _I.CLOSE): _S.CLOSING,
    (_S.OPEN, _I.DRAIN): _S.DRAINING,
    (_S.OPEN, _I.ENDED): _S.CLOSED,
    (_S.DRAINING, _I.CLOSE): _S.DRAINING,
    (_S.DRAINING, _I.DRAIN): _S.DRAINING,
    (_S.DRAINING, _I.DRAINED): _S.CLOSING,
    (_S.DRAINING, _I.ENDED): _S.CLOSED,
    (_S.CLOSING, _I.CLOSE): _S.CLOSING,
    (_S.CLOSING, _I.DRAIN): _S.CLOSING,
    (_S.CLOSING, _I.DRAINED): _S.CLOSING,
    (_S.CLOSING, _I.ENDED): _S.CLOSED,
    (_S.CLOSED, _I.CLOSE): _S.CLOSED,
    (_S.CLOSED, _I.DRAIN): _S.CLOSED,
    (_S.CLOSED, _I.DRAINED): _S.CLOSED,
    (_S.CLOSED, _I.ENDED): _S.CLOSED,
}


def transition(state: ConnState, event: ConnInput) -> ConnState:
    """The state after ``event``. Raises ValueError for a pair the lifecycle excludes
    (an ``OPEN`` connection cannot be ``DRAINED``: nothing asked it to drain)."""
    try:
        return _TRANSITIONS[(state, event)]
    except KeyError:
        raise ValueError(f"no transition from {state.value} on {event.value}") from None


def takes_close_request(state: ConnState) -> bool:
    """A close request (CLOSE or DRAIN) in ``state`` sets the close code: the first wins."""
    return state is ConnState.OPEN
