"""Configuration: frozen attrs sections, loaded from TOML, ``PERFGATE_*`` and flags."""

from perfgate.config._args import ARG_TYPES, TEMPLATE_TOKEN, TaskArg, placeholders
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
    "ARG_TYPES",
    "DEFAULT_FILE",
    "ENV_PREFIX",
    "PRIORITIES",
    "SCOPES",
    "TEMPLATE_TOKEN",
    "AuthConfig",
    "CacheConfig",
    "Config",
    "GatewayConfig",
    "HttpConfig",
    "MonitorConfig",
    "PoolConfig",
    "ServerConfig",
    "StoreConfig",
    "TaskArg",
    "TaskConfig",
    "builtin_tasks",
    "is_loopback",
    "load_config",
    "parse_address",
    "parse_redis_url",
    "placeholders",
]
