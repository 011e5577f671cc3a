"""Reference stacks the bench measures beside perfgate, with the same client harness.

Each peer is a subprocess (``python -m perfgate.bench.peers NAME --ready-file FILE``) that
binds free loopback ports, writes the same ready file as ``perfgate serve``
(``{"http": ..., "ws": ..., "pid": ...}``), serves the API shape its scenario needs, and
exits 0 on SIGTERM. They are deliberately minimal: the point is the floor a stack sets.

The job-queue peers (``celery``, ``arq``) serve no HTTP: their ready file names the client the
load generator drives them with (``"client"``) and the Redis server the bench started for them
(``"redis"``), and the ``jobs`` scenarios call them through their own Python clients.
"""

from __future__ import annotations

#: peer name -> the scenarios it serves
PEERS: dict[str, tuple[str, ...]] = {
    "hypercorn-trio": ("http",),
    "quart-trio": ("http",),
    "uvicorn": ("http",),
    "processpool": ("jobs", "jobs-throughput"),
    "celery": ("jobs", "jobs-throughput"),
    "arq": ("jobs", "jobs-throughput"),
    "websockets": ("ws-fanout", "ws-churn", "ws-idle"),
    "websockets-trio": ("ws-fanout", "ws-churn", "ws-idle"),
}
#: peers that need the bench's redis-server (``--redis URL``)
REDIS_PEERS = frozenset({"celery", "arq"})


def peers_for(scenario: str) -> list[str]:
    """The peers that serve ``scenario``, in a fixed order."""
    return [name for name, scenarios in PEERS.items() if scenario in scenarios]


__all__ = ["PEERS", "REDIS_PEERS", "peers_for"]
