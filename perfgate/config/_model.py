"""The configuration model: one frozen attrs class per section, each field with its default.

Configuration is data: it is loaded once (:mod:`perfgate.config._load`) and passed down
explicitly. Validators (:mod:`perfgate.config._values`) check *values*; the loader checks
*shape* (unknown keys, types). Every default is documented in the README's configuration
table. The service sections are here; ``[auth]`` is in :mod:`perfgate.config._auth` and
``[tasks]`` in :mod:`perfgate.config._tasks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from perfgate.config._auth import AuthConfig
from perfgate.config._tasks import TaskConfig, builtin_tasks
from perfgate.config._values import (
    address,
    at_least,
    between,
    broker,
    cidrs,
    is_loopback,
    non_negative,
    origins,
    parse_address,
    percent,
    positive,
    public_ws_url,
)
from perfgate.errors import ConfigError


@attrs.frozen
class HttpConfig:
    bind: str = attrs.field(default="127.0.0.1:8080", validator=address)
    max_body_bytes: int = attrs.field(default=1_048_576, validator=positive)
    cors_origins: tuple[str, ...] = attrs.field(default=(), validator=origins)
    trusted_proxies: tuple[str, ...] = attrs.field(default=(), validator=cidrs)
    rate_limit_per_s: float = attrs.field(default=0.0, validator=non_negative)
    rate_burst: int = attrs.field(default=100, validator=positive)
    max_wait_s: float = attrs.field(default=60.0, validator=positive)
    max_batch_jobs: int = attrs.field(default=100, validator=between(1, 10_000))
    keep_alive_timeout_s: float = attrs.field(default=5.0, validator=positive)
    read_timeout_s: float = attrs.field(default=30.0, validator=positive)
    max_header_bytes: int = attrs.field(default=16_384, validator=at_least(1024))
    max_requests_per_connection: int = attrs.field(default=1000, validator=positive)
    backlog: int = attrs.field(default=1024, validator=positive)
    events_heartbeat_s: float = attrs.field(default=15.0, validator=positive)
    events_queue_bytes: int = attrs.field(default=262_144, validator=positive)


@attrs.frozen
class GatewayConfig:
    bind: str = attrs.field(default="127.0.0.1:8081", validator=address)
    max_connections: int = attrs.field(default=10_000, validator=positive)
    max_message_bytes: int = attrs.field(default=65_536, validator=positive)
    heartbeat_min_s: float = attrs.field(default=5.0, validator=positive)
    heartbeat_max_s: float = attrs.field(default=30.0, validator=positive)
    pong_timeout_s: float = attrs.field(default=10.0, validator=positive)
    queue_bytes: int = attrs.field(default=1_048_576, validator=positive)
    slow_consumer_grace_s: float = attrs.field(default=5.0, validator=non_negative)
    batch_window_ms: float = attrs.field(default=5.0, validator=non_negative)
    batch_max: int = attrs.field(default=64, validator=positive)
    history_size: int = attrs.field(default=1000, validator=non_negative)
    history_ttl_s: float = attrs.field(default=300.0, validator=positive)
    history_bytes: int = attrs.field(default=1_048_576, validator=positive)
    history_total_bytes: int = attrs.field(default=64 * 1_048_576, validator=positive)
    max_channels: int = attrs.field(default=50_000, validator=positive)
    allowed_origins: tuple[str, ...] = attrs.field(default=(), validator=origins)
    rate_limit_per_s: float = attrs.field(default=100.0, validator=non_negative)
    #: New connections admitted per second (0: no pace), and how many at once beyond it
    #: (perfgate.gateway.accept: over the rate a handshake waits up to a second, then 503).
    accept_rate_per_s: float = attrs.field(default=1000.0, validator=non_negative)
    accept_burst: int = attrs.field(default=100, validator=positive)
    close_timeout_s: float = attrs.field(default=5.0, validator=positive)
    #: Where clients reach the gateway, as ``GET /v1/info`` tells them: a ``ws(s)://`` URL,
    #: or a path on the HTTP API's host (behind a proxy serving both). Empty: the bound
    #: address.
    public_url: str = attrs.field(default="", validator=public_ws_url)

    def __attrs_post_init__(self) -> None:
        if self.heartbeat_min_s > self.heartbeat_max_s:
            raise ConfigError(
                f"heartbeat_min_s ({self.heartbeat_min_s}) must not exceed "
                f"heartbeat_max_s ({self.heartbeat_max_s})"
            )


@attrs.frozen
class PoolConfig:
    min_workers: int = attrs.field(default=1, validator=non_negative)
    max_workers: int = attrs.field(default=4, validator=positive)
    max_queue: int = attrs.field(default=10_000, validator=positive)
    max_jobs_per_worker: int = attrs.field(default=1000, validator=positive)
    max_worker_rss_mb: float = attrs.field(default=512.0, validator=positive)
    kill_grace_s: float = attrs.field(default=5.0, validator=non_negative)
    drain_timeout_s: float = attrs.field(default=30.0, validator=non_negative)
    idle_timeout_s: float = attrs.field(default=60.0, validator=positive)
    retry_backoff_s: float = attrs.field(default=0.5, validator=non_negative)
    retry_backoff_max_s: float = attrs.field(default=30.0, validator=non_negative)
    priority_aging_s: float = attrs.field(default=10.0, validator=positive)
    max_log_line_bytes: int = attrs.field(default=4096, validator=positive)

    def __attrs_post_init__(self) -> None:
        if self.min_workers > self.max_workers:
            raise ConfigError(
                f"min_workers ({self.min_workers}) must not exceed max_workers ({self.max_workers})"
            )


@attrs.frozen
class StoreConfig:
    data_dir: str = ".perfgate"
    result_ttl_s: float = attrs.field(default=86_400.0, validator=positive)
    max_log_lines: int = attrs.field(default=1000, validator=positive)


@attrs.frozen
class CacheConfig:
    memory_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=non_negative)
    disk_bytes: int = attrs.field(default=1024 * 1024 * 1024, validator=non_negative)
    ttl_s: float = attrs.field(default=3600.0, validator=positive)


@attrs.frozen
class MonitorConfig:
    window_s: float = attrs.field(default=60.0, validator=positive)
    cpu_alert_pct: float = attrs.field(default=80.0, validator=percent)
    memory_alert_pct: float = attrs.field(default=85.0, validator=percent)
    error_rate_alert_pct: float = attrs.field(default=5.0, validator=percent)
    queue_depth_alert: int = attrs.field(default=100, validator=positive)
    p99_alert_ms: float = attrs.field(default=500.0, validator=positive)
    sample_interval_s: float = attrs.field(default=1.0, validator=positive)
    regression_warn_pct: float = attrs.field(default=15.0, validator=positive)
    regression_critical_pct: float = attrs.field(default=30.0, validator=positive)
    min_samples: int = attrs.field(default=100, validator=positive)

    def __attrs_post_init__(self) -> None:
        if self.regression_warn_pct > self.regression_critical_pct:
            raise ConfigError(
                f"regression_warn_pct ({self.regression_warn_pct}) must not exceed "
                f"regression_critical_pct ({self.regression_critical_pct})"
            )
        if self.sample_interval_s > self.window_s:
            raise ConfigError(
                f"sample_interval_s ({self.sample_interval_s}) must not exceed "
                f"window_s ({self.window_s})"
            )


@attrs.frozen
class ServerConfig:
    broker: str = attrs.field(default="memory://", validator=broker)
    log_format: str = attrs.field(default="text", validator=attrs.validators.in_(("text", "json")))
    log_level: str = attrs.field(
        default="info", validator=attrs.validators.in_(("debug", "info", "warning", "error"))
    )
    insecure: bool = False
    #: With a Redis broker: how long a job's claim lasts without its owner refreshing it (every
    #: quarter of it). A job of a killed instance is reclaimed this long after its last
    #: refresh; it must exceed the longest stall of an instance's event loop.
    job_lease_s: float = attrs.field(default=10.0, validator=positive)


@attrs.frozen
class Config:
    """The whole configuration. Build it with :func:`perfgate.config.load_config`."""

    server: ServerConfig = ServerConfig()
    http: HttpConfig = HttpConfig()
    gateway: GatewayConfig = GatewayConfig()
    pool: PoolConfig = PoolConfig()
    store: StoreConfig = StoreConfig()
    cache: CacheConfig = CacheConfig()
    monitor: MonitorConfig = MonitorConfig()
    auth: AuthConfig = attrs.field(factory=AuthConfig)
    tasks: Mapping[str, TaskConfig] = attrs.field(factory=builtin_tasks)
    #: ``[schedules.NAME]`` (:class:`perfgate.config.ScheduleConfig`), checked against the
    #: tasks at start by :func:`perfgate.jobs.scheduler.check_schedules`.
    schedules: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth.tokens)

    def check_exposure(self) -> None:
        """Refuse a non-loopback bind with no tokens, unless ``insecure`` was asked for."""
        if self.auth_enabled or self.server.insecure:
            return
        for section, bind in (("http", self.http.bind), ("gateway", self.gateway.bind)):
            host, _ = parse_address(bind)
            if not is_loopback(host):
                raise ConfigError(
                    f"[{section}] bind {bind!r} is not loopback and no [auth] tokens are "
                    "configured; add tokens or pass --insecure"
                )


SECTIONS: dict[str, type[Any]] = {
    "server": ServerConfig,
    "http": HttpConfig,
    "gateway": GatewayConfig,
    "pool": PoolConfig,
    "store": StoreConfig,
    "cache": CacheConfig,
    "monitor": MonitorConfig,
    "auth": AuthConfig,
}
