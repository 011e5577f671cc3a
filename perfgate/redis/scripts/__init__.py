"""The Lua scripts of the Redis backend, one module per concept: :mod:`.channels` (publish,
sync), :mod:`.jobs` (the journal's writes and reads), :mod:`.queue` (claim, refresh),
:mod:`.limits` (per-task slots and held jobs), :mod:`.delayed` (due jobs), and
:mod:`.common` (the helpers they share, with the state sets rendered from the lifecycle
table). Pure strings: no I/O. See docs/architecture.md §6.
"""

from perfgate.redis.scripts.channels import PUBLISH_MANY_LUA, SYNC_MANY_LUA
from perfgate.redis.scripts.delayed import DUE_LUA
from perfgate.redis.scripts.jobs import (
    CREATE_MANY_LUA,
    LIST_LUA,
    LOG_LUA,
    PROGRESS_LUA,
    SWEEP_LUA,
    TRANSITION_MANY_LUA,
)
from perfgate.redis.scripts.queue import CLAIM_LUA, REFRESH_LUA

__all__ = [
    "CLAIM_LUA",
    "CREATE_MANY_LUA",
    "DUE_LUA",
    "LIST_LUA",
    "LOG_LUA",
    "PROGRESS_LUA",
    "PUBLISH_MANY_LUA",
    "REFRESH_LUA",
    "SWEEP_LUA",
    "SYNC_MANY_LUA",
    "TRANSITION_MANY_LUA",
]
