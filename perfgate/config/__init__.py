"""Configuration: frozen attrs sections, loaded from TOML, ``PERFGATE_*`` and flags."""

from perfgate.config._load import DEFAULT_FILE, ENV_PREFIX, load_config
from perfgate.config._model import (
    PRIORITIES,
    SCOPES,
    AuthConfig,
    CacheConfig,
    Config,
    GatewayConfig,
    HttpConfig,
    MonitorConfig,
    PoolConfig,
    ServerConfig,
    StoreConfig,
    TaskConfig,
    builtin_tasks,
    is_loopback,
    parse_address,
    parse_redis_url,
)

__all__ = [
    "DEFAULT_FILE",
    "ENV_PREFIX",
    "PRIORITIES",
    "SCOPES",
    "AuthConfig",
    "CacheConfig",
    "Config",
    "GatewayConfig",
    "HttpConfig",
    "MonitorConfig",
    "PoolConfig",
    "ServerConfig",
    "StoreConfig",
    "TaskConfig",
    "builtin_tasks",
    "is_loopback",
    "load_config",
    "parse_address",
    "parse_redis_url",
]
