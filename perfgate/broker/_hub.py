"""The pub/sub hub interface: what the gateway and the HTTP publish route rely on.

A hub owns channel offsets and history and fans messages out to *sinks*. The in-process
:class:`~perfgate.broker.memory.MemoryHub` is the default;
:class:`perfgate.redis.hub.RedisHub` implements the same protocol (:mod:`perfgate.backend`
chooses). Methods are async so that a networked hub fits; the memory hub's never
checkpoint, which makes its publish and subscribe atomic with respect to each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from perfgate.broker._history import Message, Replay


class Sink(Protocol):
    """Where a hub delivers one subscription's messages.

    ``deliver`` is called synchronously from the publisher's task: it must not block, must
    not raise, and must accept (or drop, and count) whatever it is given. A sink may see a
    message twice around a ``since`` replay; it de-duplicates by offset.
    """

    def deliver(self, message: Message) -> None: ...


class Hub(Protocol):
    async def publish(self, channel: str, data: Any, *, priority: str = "normal") -> int:
        """Append ``data`` to ``channel``, fan it out, and return its offset.

        Never blocks on a subscriber: slow sinks drop, publishers carry on. The channel
        name is not validated here (the caller validates, see
        :func:`perfgate.gateway.channels.check_publish`).
        """
        ...

    async def subscribe(
        self, channel: str, sink: Sink, *, since: int | None = None, epoch: str | None = None
    ) -> Replay:
        """Register ``sink`` for live messages, then return the replay after ``since``.

        The sink is registered before history is read, so nothing published in between is
        lost; messages that arrive both ways are de-duplicated by the sink. With
        ``since=None`` the replay is empty and ``recovered`` is True.
        """
        ...

    async def unsubscribe(self, channel: str, sink: Sink) -> None:
        """Stop delivering to ``sink`` (idempotent). Callers cleaning up after
        cancellation run it under a shielded scope with a short deadline."""
        ...

    @property
    def clock(self) -> Callable[[], float]: ...

    def stats(self) -> dict[str, Any]: ...
