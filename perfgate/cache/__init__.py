"""The result cache for ``cacheable`` tasks: L1 in memory, L2 on disk (``diskcache``).

``async with ResultCache(config.cache, data_dir) as cache``; :class:`ByteLRU` is the pure
LRU/TTL bookkeeping behind L1.
"""

from perfgate.cache._result import ResultCache
from perfgate.cache.lru import ByteLRU

__all__ = ["ByteLRU", "ResultCache"]
