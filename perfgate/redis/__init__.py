"""The Redis backend: channels, the job journal and the shared job queue on one Redis.

Loaded only when ``[server] broker`` is ``redis://...`` (through :mod:`perfgate.backend`), so
coredis and anyio stay out of the memory mode. Modules, by concept (docs/architecture.md §6):
``client`` (connection, errors), ``keys`` (names), ``codec`` (what is stored), ``replay``
(a subscriber's replay), ``scripts/`` (the Lua), and the shells: ``hub``, ``journal``,
``queue``.
"""

from perfgate.redis.client import DEPENDENCY, REDIS_ERRORS, open_redis, redis_unavailable
from perfgate.redis.hub import RedisHub
from perfgate.redis.journal import RedisJournal
from perfgate.redis.queue import RedisJobQueue

__all__ = [
    "DEPENDENCY",
    "REDIS_ERRORS",
    "RedisHub",
    "RedisJobQueue",
    "RedisJournal",
    "open_redis",
    "redis_unavailable",
]
