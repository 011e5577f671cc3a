"""Pub/sub: channel offsets, bounded history with epochs, fan-out to sinks.

``Hub`` is the interface; ``MemoryHub`` the in-process implementation.
"""

from perfgate.broker._history import ChannelHistory, Message, Replay
from perfgate.broker._hub import Hub, Sink
from perfgate.broker.memory import MemoryHub
from perfgate.priorities import PRIORITIES

__all__ = ["PRIORITIES", "ChannelHistory", "Hub", "MemoryHub", "Message", "Replay", "Sink"]
