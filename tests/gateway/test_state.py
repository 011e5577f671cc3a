"""The connection lifecycle table (pure)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfgate.errors import WS_CLOSE_CODES
from perfgate.gateway.state import ConnInput, ConnState, takes_close_request, transition


def test_the_paths_through_the_lifecycle() -> None:
    s = transition(ConnState.OPEN, ConnInput.DRAIN)
    assert s is ConnState.DRAINING and s.writes and not s.accepts_messages
    assert transition(s, ConnInput.CLOSE) is ConnState.DRAINING  # the first request wins
    s = transition(s, ConnInput.DRAINED)
    assert s is ConnState.CLOSING and not s.writes
    assert transition(s, ConnInput.ENDED) is ConnState.CLOSED
    assert transition(ConnState.OPEN, ConnInput.CLOSE) is ConnState.CLOSING
    assert transition(ConnState.OPEN, ConnInput.ENDED) is ConnState.CLOSED  # cancelled


def test_an_open_connection_cannot_be_drained_without_a_drain() -> None:
    with pytest.raises(ValueError, match="open"):
        transition(ConnState.OPEN, ConnInput.DRAINED)


@given(st.lists(st.sampled_from(list(ConnInput)), max_size=12))
def test_every_walk_moves_forward_and_only_open_takes_a_close_request(
    inputs: list[ConnInput],
) -> None:
    order = [ConnState.OPEN, ConnState.DRAINING, ConnState.CLOSING, ConnState.CLOSED]
    state = ConnState.OPEN
    requests_taken = 0
    for event in inputs:
        if event is ConnInput.DRAINED and state is ConnState.OPEN:
            continue
        if event in (ConnInput.CLOSE, ConnInput.DRAIN) and takes_close_request(state):
            requests_taken += 1
        after = transition(state, event)
        assert order.index(after) >= order.index(state)
        if state is ConnState.CLOSED:
            assert after is ConnState.CLOSED
        state = after
    assert requests_taken <= 1


def test_the_close_codes_table() -> None:
    assert WS_CLOSE_CODES["slow consumer"] == 4008
    assert WS_CLOSE_CODES["heartbeat timeout"] == 4009
    assert WS_CLOSE_CODES["server shutting down"] == 1001
    assert all(1000 <= code < 5000 for code in WS_CLOSE_CODES.values())
