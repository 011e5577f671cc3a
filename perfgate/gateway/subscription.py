"""The sink a connection registers with the hub for one channel: the replay/live seam."""

from __future__ import annotations

from typing import Protocol

from perfgate.broker import Message

MAX_SUBSCRIPTIONS = 1000
"""Channels one connection may subscribe to: keeps per-connection hub state bounded."""
MAX_HELD = 1024
"""Live messages held back while a subscription's replay is being queued."""


class Outlet(Protocol):
    """What a subscription feeds: the connection's outbox."""

    def offer(self, message: Message) -> None: ...

    def count_drop(self) -> None: ...


class Subscription:
    """The sink one connection registers for one channel.

    Until :meth:`go_live`, live messages are held back (the subscribe ack and the replay
    are being queued); afterwards each message is passed on unless its offset was already
    seen, so a replay and live traffic meet with no duplicate and no gap.
    """

    __slots__ = ("active", "channel", "conn", "held", "last_offset")

    def __init__(self, conn: Outlet, channel: str) -> None:
        self.conn = conn
        self.channel = channel
        self.held: list[Message] | None = []
        self.last_offset = 0
        self.active = True

    def deliver(self, message: Message) -> None:
        if not self.active:
            return
        held = self.held
        if held is not None:
            if len(held) < MAX_HELD:
                held.append(message)
            else:
                self.conn.count_drop()
            return
        if message.offset <= self.last_offset:
            return
        self.last_offset = message.offset
        self.conn.offer(message)

    def go_live(self, after_offset: int) -> None:
        held, self.held = self.held or [], None
        self.last_offset = after_offset
        for message in held:
            self.deliver(message)
