"""The configuration model: one frozen attrs class per section, each field with its default.

Configuration is data: it is loaded once (:mod:`perfgate.config._load`) and passed down
explicitly. Validators here check *values*; the loader checks *shape* (unknown keys, types).
Every default below is documented in the README's configuration table.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from perfgate.config._args import TaskArg, placeholders
from perfgate.errors import ConfigError
from perfgate.priorities import PRIORITIES

SCOPES = frozenset({"submit", "publish", "subscribe", "metrics", "admin"})
# Whole-string patterns are used with fullmatch: "$" would also match before a final newline.
_TASK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", re.ASCII)
_ORIGIN = re.compile(r"https?://[^/\s]+")
_TOKEN = re.compile(r"[\x21-\x7e]+")
_PORT = re.compile(r"[0-9]{1,5}")
_DB = re.compile(r"[0-9]{1,9}")


# -- value validators -------------------------------------------------------------------------


def _positive(_inst: Any, attr: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{attr.name}: must be > 0, got {value!r}")


def _non_negative(_inst: Any, attr: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ConfigError(f"{attr.name}: must be >= 0, got {value!r}")


def _optional(check: Any) -> Any:
    def maybe(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            check(inst, attr, value)

    return maybe


def _at_least(minimum: int) -> Any:
    def check(_inst: Any, attr: attrs.Attribute[Any], value: int) -> None:
        if value < minimum:
            raise ConfigError(f"{attr.name}: must be >= {minimum}, got {value!r}")

    return check


def _between(minimum: int, maximum: int) -> Any:
    def check(_inst: Any, attr: attrs.Attribute[Any], value: int) -> None:
        if not minimum <= value <= maximum:
            raise ConfigError(
                f"{attr.name}: must be between {minimum} and {maximum}, got {value!r}"
            )

    return check


def _percent(_inst: Any, attr: attrs.Attribute[Any], value: float) -> None:
    if not 0 < value <= 100:
        raise ConfigError(f"{attr.name}: must be a percentage in (0, 100], got {value!r}")


def parse_address(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` for IPv6). Port 0 means "pick a free port"."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not _PORT.fullmatch(port_text):
        raise ConfigError(f"expected HOST:PORT, got {value!r}")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(f"port out of range in {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def is_loopback(host: str) -> bool:
    """True for a loopback literal or ``localhost``; a name that must be resolved is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _address(_inst: Any, attr: attrs.Attribute[Any], value: str) -> None:
    try:
        parse_address(value)
    except ConfigError as exc:
        raise ConfigError(f"{attr.name}: {exc.message}") from None


def _public_ws_url(_inst: Any, attr: attrs.Attribute[Any], value: str) -> None:
    if value and not re.fullmatch(r"(wss?://[^/\s]+)?/\S*", value):
        raise ConfigError(
            f"{attr.name}: expected '', a path like '/ws' or a URL like 'wss://host/ws', "
            f"got {value!r}"
        )


def _cidrs(_inst: Any, attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{attr.name}: not a CIDR or IP address: {item!r}") from None


def _origins(_inst: Any, attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for item in value:
        if item != "*" and not _ORIGIN.fullmatch(item):
            raise ConfigError(
                f"{attr.name}: expected an origin like 'https://app.example.com' or '*', "
                f"got {item!r}"
            )


# -- sections ---------------------------------------------------------------------------------


@attrs.frozen
class HttpConfig:
    bind: str = attrs.field(default="127.0.0.1:8080", validator=_address)
    max_body_bytes: int = attrs.field(default=1_048_576, validator=_positive)
    cors_origins: tuple[str, ...] = attrs.field(default=(), validator=_origins)
    trusted_proxies: tuple[str, ...] = attrs.field(default=(), validator=_cidrs)
    rate_limit_per_s: float = attrs.field(default=0.0, validator=_non_negative)
    rate_burst: int = attrs.field(default=100, validator=_positive)
    max_wait_s: float = attrs.field(default=60.0, validator=_positive)
    max_batch_jobs: int = attrs.field(default=100, validator=_between(1, 10_000))
    keep_alive_timeout_s: float = attrs.field(default=5.0, validator=_positive)
    read_timeout_s: float = attrs.field(default=30.0, validator=_positive)
    max_header_bytes: int = attrs.field(default=16_384, validator=_at_least(1024))
    max_requests_per_connection: int = attrs.field(default=1000, validator=_positive)
    backlog: int = attrs.field(default=1024, validator=_positive)
    events_heartbeat_s: float = attrs.field(default=15.0, validator=_positive)
    events_queue_bytes: int = attrs.field(default=262_144, validator=_positive)


@attrs.frozen
class GatewayConfig:
    bind: str = attrs.field(default="127.0.0.1:8081", validator=_address)
    max_connections: int = attrs.field(default=10_000, validator=_positive)
    max_message_bytes: int = attrs.field(default=65_536, validator=_positive)
    heartbeat_min_s: float = attrs.field(default=5.0, validator=_positive)
    heartbeat_max_s: float = attrs.field(default=30.0, validator=_positive)
    pong_timeout_s: float = attrs.field(default=10.0, validator=_positive)
    queue_bytes: int = attrs.field(default=1_048_576, validator=_positive)
    slow_consumer_grace_s: float = attrs.field(default=5.0, validator=_non_negative)
    batch_window_ms: float = attrs.field(default=5.0, validator=_non_negative)
    batch_max: int = attrs.field(default=64, validator=_positive)
    history_size: int = attrs.field(default=1000, validator=_non_negative)
    history_ttl_s: float = attrs.field(default=300.0, validator=_positive)
    history_bytes: int = attrs.field(default=1_048_576, validator=_positive)
    history_total_bytes: int = attrs.field(default=64 * 1_048_576, validator=_positive)
    max_channels: int = attrs.field(default=50_000, validator=_positive)
    allowed_origins: tuple[str, ...] = attrs.field(default=(), validator=_origins)
    rate_limit_per_s: float = attrs.field(default=100.0, validator=_non_negative)
    close_timeout_s: float = attrs.field(default=5.0, validator=_positive)
    #: Where clients reach the gateway, as ``GET /v1/info`` tells them: a ``ws(s)://`` URL,
    #: or a path on the HTTP API's host (behind a proxy serving both). Empty: the bound
    #: address.
    public_url: str = attrs.field(default="", validator=_public_ws_url)

    def __attrs_post_init__(self) -> None:
        if self.heartbeat_min_s > self.heartbeat_max_s:
            raise ConfigError(
                f"heartbeat_min_s ({self.heartbeat_min_s}) must not exceed "
                f"heartbeat_max_s ({self.heartbeat_max_s})"
            )


@attrs.frozen
class PoolConfig:
    min_workers: int = attrs.field(default=1, validator=_non_negative)
    max_workers: int = attrs.field(default=4, validator=_positive)
    max_queue: int = attrs.field(default=10_000, validator=_positive)
    max_jobs_per_worker: int = attrs.field(default=1000, validator=_positive)
    max_worker_rss_mb: float = attrs.field(default=512.0, validator=_positive)
    kill_grace_s: float = attrs.field(default=5.0, validator=_non_negative)
    drain_timeout_s: float = attrs.field(default=30.0, validator=_non_negative)
    idle_timeout_s: float = attrs.field(default=60.0, validator=_positive)
    retry_backoff_s: float = attrs.field(default=0.5, validator=_non_negative)
    retry_backoff_max_s: float = attrs.field(default=30.0, validator=_non_negative)
    priority_aging_s: float = attrs.field(default=10.0, validator=_positive)
    max_log_line_bytes: int = attrs.field(default=4096, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.min_workers > self.max_workers:
            raise ConfigError(
                f"min_workers ({self.min_workers}) must not exceed max_workers ({self.max_workers})"
            )


@attrs.frozen
class StoreConfig:
    data_dir: str = ".perfgate"
    result_ttl_s: float = attrs.field(default=86_400.0, validator=_positive)
    max_log_lines: int = attrs.field(default=1000, validator=_positive)


@attrs.frozen
class CacheConfig:
    memory_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=_non_negative)
    disk_bytes: int = attrs.field(default=1024 * 1024 * 1024, validator=_non_negative)
    ttl_s: float = attrs.field(default=3600.0, validator=_positive)


@attrs.frozen
class MonitorConfig:
    window_s: float = attrs.field(default=60.0, validator=_positive)
    cpu_alert_pct: float = attrs.field(default=80.0, validator=_percent)
    memory_alert_pct: float = attrs.field(default=85.0, validator=_percent)
    error_rate_alert_pct: float = attrs.field(default=5.0, validator=_percent)
    queue_depth_alert: int = attrs.field(default=100, validator=_positive)
    p99_alert_ms: float = attrs.field(default=500.0, validator=_positive)
    sample_interval_s: float = attrs.field(default=1.0, validator=_positive)
    regression_warn_pct: float = attrs.field(default=15.0, validator=_positive)
    regression_critical_pct: float = attrs.field(default=30.0, validator=_positive)
    min_samples: int = attrs.field(default=100, validator=_positive)

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


#: The tenant of every job when no tokens are configured, and of jobs journalled before
#: tenants existed (only ``admin`` tokens, or a token naming this tenant, see those).
DEFAULT_TENANT = "default"
_TENANT = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@attrs.frozen
class TokenGrant:
    """What one token may do (``scopes``) and whose jobs it acts on (``tenant``; ``None``:
    the token is its own tenant, see :func:`perfgate.auth.token_tenant`)."""

    scopes: tuple[str, ...] = ()
    tenant: str | None = None

    @classmethod
    def from_config(cls, value: Any, where: str) -> TokenGrant:
        """``["submit", ...]`` (scopes only) or ``{ scopes = [...], tenant = "acme" }``."""
        if isinstance(value, cls):
            return value
        if isinstance(value, list | tuple):
            value = {"scopes": value}
        if not isinstance(value, dict):
            raise ConfigError(
                f"{where}: expected a list of scopes or a table with scopes and tenant, "
                f"got {value!r}"
            )
        unknown = set(value) - {"scopes", "tenant"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {sorted(unknown)[0]!r} (known: scopes, tenant)"
            )
        scopes = value.get("scopes", [])
        if not isinstance(scopes, list | tuple) or not all(isinstance(s, str) for s in scopes):
            raise ConfigError(f"{where}.scopes: expected a list of strings, got {scopes!r}")
        tenant = value.get("tenant")
        if tenant is not None and (not isinstance(tenant, str) or not _TENANT.fullmatch(tenant)):
            raise ConfigError(
                f"{where}.tenant: expected 1-64 letters, digits, '_', '.' or '-', got {tenant!r}"
            )
        return cls(scopes=tuple(scopes), tenant=tenant)


def _grants(value: Mapping[str, Any]) -> dict[str, TokenGrant]:
    # Tests and embedders pass ``{"token": ("submit",)}``, as before tenants existed.
    return {str(k): TokenGrant.from_config(v, f"tokens.{k}") for k, v in value.items()}


def _tokens(_inst: Any, attr: attrs.Attribute[Any], value: Mapping[str, TokenGrant]) -> None:
    for token, grant in value.items():
        if len(token) < 8:
            raise ConfigError(f"{attr.name}: a token must be at least 8 characters")
        if not _TOKEN.fullmatch(token):
            # A header cannot carry the rest ("token\n" could never be presented).
            raise ConfigError(f"{attr.name}: a token is printable ASCII without spaces")
        unknown = set(grant.scopes) - SCOPES
        if unknown:
            raise ConfigError(
                f"{attr.name}: unknown scope {sorted(unknown)[0]!r} "
                f"(known: {', '.join(sorted(SCOPES))})"
            )


@attrs.frozen
class AuthConfig:
    tokens: Mapping[str, TokenGrant] = attrs.field(
        factory=dict, converter=_grants, validator=_tokens
    )


def parse_redis_url(url: str) -> tuple[str, int, int]:
    """``redis://HOST[:PORT][/N]`` → ``(host, port, db)``; raises ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError("expected redis://HOST:PORT/N")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("query, fragment and credentials are not supported")
    port = parts.port if parts.port is not None else 6379
    path = parts.path.strip("/")
    if path and not _DB.fullmatch(path):
        raise ValueError(f"database must be a number, got {path!r}")
    return parts.hostname, port, int(path or 0)


def _broker(_inst: Any, attr: attrs.Attribute[Any], value: str) -> None:
    # Refusing a URL we cannot serve beats silently running single-instance.
    if value == "memory://":
        return
    try:
        parse_redis_url(value)
    except ValueError as exc:
        raise ConfigError(
            f"{attr.name}: expected 'memory://' or 'redis://HOST:PORT/N', got {value!r} ({exc})"
        ) from None


@attrs.frozen
class ServerConfig:
    broker: str = attrs.field(default="memory://", validator=_broker)
    log_format: str = attrs.field(default="text", validator=attrs.validators.in_(("text", "json")))
    log_level: str = attrs.field(
        default="info", validator=attrs.validators.in_(("debug", "info", "warning", "error"))
    )
    insecure: bool = False
    #: With a Redis broker: how long a job's claim lasts without its owner refreshing it (every
    #: quarter of it). A job of a killed instance is reclaimed this long after its last
    #: refresh; it must exceed the longest stall of an instance's event loop.
    job_lease_s: float = attrs.field(default=10.0, validator=_positive)


@attrs.frozen
class TaskConfig:
    """A named task: a Python ``target`` ("module:function") or an argv ``command`` template."""

    name: str
    target: str | None = None
    command: tuple[str, ...] | None = None
    timeout_s: float = attrs.field(default=300.0, validator=_positive)
    max_retries: int = attrs.field(default=0, validator=_non_negative)
    cacheable: bool = False
    priority: str = attrs.field(default="normal", validator=attrs.validators.in_(PRIORITIES))
    #: May a value substituted into ``command`` start with "-"? Off: "--help" or "-o/etc/x"
    #: would reach the program as an option (issue 19.3). Per argument: ``TaskArg``.
    allow_options: bool = False
    #: Declared arguments (``[tasks.NAME.args.ARG]``); empty: any arguments (Python tasks)
    #: or the command's placeholders, unchecked beyond the command rules.
    args: Mapping[str, TaskArg] = attrs.field(factory=dict)
    #: At most this many of its jobs run at once (across instances on one Redis); None: no cap.
    max_concurrency: int | None = attrs.field(default=None, validator=_optional(_positive))
    #: At most this many of its jobs start per second (a token bucket); None: no cap.
    rate_per_s: float | None = attrs.field(default=None, validator=_optional(_positive))

    def options_allowed(self, arg: str) -> bool:
        """Whether the value of ``arg`` may start with "-" when substituted into ``command``."""
        declared = self.args.get(arg)
        if declared is not None and declared.allow_options is not None:
            return declared.allow_options
        return self.allow_options

    def __attrs_post_init__(self) -> None:
        if not _TASK_NAME.fullmatch(self.name):
            raise ConfigError(f"task name {self.name!r}: letters, digits, '_', '.', '-' only")
        if (self.target is None) == (self.command is None):
            raise ConfigError(f"[tasks.{self.name}]: give exactly one of 'target' or 'command'")
        if self.target is not None and not _TARGET.fullmatch(self.target):
            raise ConfigError(
                f"[tasks.{self.name}] target: expected 'module.path:function', got {self.target!r}"
            )
        if self.command is not None and not self.command:
            raise ConfigError(f"[tasks.{self.name}] command: must not be empty")
        for arg in self.args:
            if not _ARG_NAME.fullmatch(arg):
                raise ConfigError(f"[tasks.{self.name}.args] {arg!r}: not an identifier")
        if self.command is not None:
            self._check_template(self.command)

    def _check_template(self, command: tuple[str, ...]) -> None:
        try:
            used = placeholders(command)
        except ValueError as exc:
            raise ConfigError(f"[tasks.{self.name}] command: {exc}") from None
        if not self.args:
            return
        for name in sorted(used - set(self.args)):
            raise ConfigError(f"[tasks.{self.name}] command: {{{name}}} is not declared in args")
        for name in sorted(set(self.args) - used):
            raise ConfigError(f"[tasks.{self.name}.args.{name}]: not used by the command")


def builtin_tasks() -> dict[str, TaskConfig]:
    """The tasks every fresh install has, so that ``make run`` does real work. They take the
    documented defaults (``timeout_s`` 300, no retries) like any task configured without them."""
    return {
        "echo": TaskConfig(name="echo", target="perfgate.tasks:echo"),
        "sleep": TaskConfig(
            name="sleep",
            target="perfgate.tasks:sleep",
            args={
                "seconds": TaskArg(type="number", minimum=0, maximum=86_400),
                "steps": TaskArg(type="integer", minimum=1, maximum=100_000),
            },
        ),
        "sha256": TaskConfig(
            name="sha256",
            target="perfgate.tasks:sha256",
            cacheable=True,
            args={
                "data": TaskArg(type="string"),
                "rounds": TaskArg(type="integer", minimum=1, maximum=10_000_000),
            },
        ),
    }


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
    auth: AuthConfig = AuthConfig()
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
