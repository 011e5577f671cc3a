"""The WebSocket gateway (docs/architecture.md §4): channels, heartbeats, backpressure, batching."""

from perfgate.gateway.connection import Connection
from perfgate.gateway.server import WS_PATH, Gateway
from perfgate.gateway.stats import CloseInfo, GatewayStats

__all__ = ["WS_PATH", "CloseInfo", "Connection", "Gateway", "GatewayStats"]
