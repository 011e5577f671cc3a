"""Configuration: frozen attrs sections, loaded from TOML, ``PERFGATE_*`` and flags."""

from perfgate.config._args import ARG_TYPES, TEMPLATE_TOKEN, TaskArg, placeholders
from perfgate.config._auth import DEFAULT_TENANT, SCOPES, AuthConfig, TokenGrant
from perfgate.config._load import DEFAULT_FILE, ENV_PREFIX, load_config
from perfgate.config._model import (
    CacheConfig,
    Config,
    GatewayConfig,
    HttpConfig,
    MonitorConfig,
    PoolConfig,
    ServerConfig,
    StoreConfig,
)
from perfgate.config._schedules import CATCH_UP, ScheduleConfig
from perfgate.config._tasks import TaskConfig, builtin_tasks
from perfgate.config._values import is_loopback, parse_address, parse_redis_url
from perfgate.priorities import PRIORITIES

__all__ = [
    "ARG_TYPES",
    "CATCH_UP",
    "DEFAULT_FILE",
    "DEFAULT_TENANT",
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
    "ScheduleConfig",
    "ServerConfig",
    "StoreConfig",
    "TaskArg",
    "TaskConfig",
    "TokenGrant",
    "builtin_tasks",
    "is_loopback",
    "load_config",
    "parse_address",
    "parse_redis_url",
    "placeholders",
]
