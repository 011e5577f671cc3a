"""Reference stacks the bench measures beside perfgate, with the same client harness.

Each peer is a subprocess (``python -m perfgate.bench.peers NAME --ready-file FILE``) that
binds free loopback ports, writes the same ready file as ``perfgate serve``
(``{"http": ..., "ws": ..., "pid": ...}``), serves the API shape its scenario needs, and
exits 0 on SIGTERM. They are deliberately minimal: the point is the floor a stack sets.
"""

from __future__ import annotations

#: peer name -> the scenarios it serves
PEERS: dict[str, tuple[str, ...]] = {
    "hypercorn-trio": ("http",),
    "uvicorn": ("http",),
    "processpool": ("jobs",),
    "websockets": ("ws-fanout", "ws-churn"),
}


def peers_for(scenario: str) -> list[str]:
    """The peers that serve ``scenario``, in a fixed order."""
    return [name for name, scenarios in PEERS.items() if scenario in scenarios]


__all__ = ["PEERS", "peers_for"]
