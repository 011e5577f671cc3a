"""Loading the configuration (perfgate.config._load): TOML < PERFGATE_* environment < flags, and
one clear error for bad input. Everything goes through load_config, so the model, task and
token checks it reaches are tested here too."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfgate.config import Config, TokenGrant, load_config
from perfgate.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "perfgate.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_embedded_developer_setup() -> None:
    config = load_config(None, env={})
    assert config.http.bind == "127.0.0.1:8080"
    assert config.gateway.bind == "127.0.0.1:8081"
    assert config.store.data_dir == ".perfgate"
    assert config.server.broker == "memory://"
    assert set(config.tasks) >= {"echo", "sleep", "sha256"}
    assert not config.auth_enabled
    config.check_exposure()  # loopback with no tokens is allowed


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[http]\nbind = "127.0.0.1:9000"\nmax_body_bytes = 10\n[pool]\nmax_workers = 3\n',
    )
    config = load_config(
        path,
        env={"PERFGATE_HTTP_BIND": "127.0.0.1:9001", "PERFGATE_POOL_MAX_WORKERS": "5"},
        overrides={"http": {"bind": "127.0.0.1:9002"}},
    )
    assert config.http.bind == "127.0.0.1:9002"  # flag wins
    assert config.http.max_body_bytes == 10  # file value kept
    assert config.pool.max_workers == 5  # env beats file


def test_env_parses_lists_tables_and_bools() -> None:
    config = load_config(
        None,
        env={
            "PERFGATE_HTTP_CORS_ORIGINS": "https://a.example,https://b.example",
            "PERFGATE_AUTH_TOKENS": '{"s3cret-token": ["submit", "subscribe"]}',
            "PERFGATE_SERVER_INSECURE": "yes",
        },
    )
    assert config.http.cors_origins == ("https://a.example", "https://b.example")
    assert config.auth.tokens == {"s3cret-token": TokenGrant(("submit", "subscribe"))}
    assert config.server.insecure is True


def test_tasks_are_added_to_the_builtins(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[tasks.build]\ncommand = ["make", "-C", "{project}"]\ntimeout_s = 600\n'
        '[tasks.thumb]\ntarget = "myapp.tasks:thumbnail"\ncacheable = true\nmax_retries = 3\n',
    )
    config = load_config(path, env={})
    assert config.tasks["build"].command == ("make", "-C", "{project}")
    assert config.tasks["build"].timeout_s == 600.0
    assert config.tasks["thumb"].cacheable and config.tasks["thumb"].max_retries == 3
    assert "echo" in config.tasks


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ('[http]\nbind = "nope"\n', {}, "[http] bind: expected HOST:PORT"),
        ('[http]\nbnid = "127.0.0.1:1"\n', {}, "[http] bnid: unknown key"),
        ("[htp]\n", {}, "unknown section [htp]"),
        ('[pool]\nmax_workers = "four"\n', {}, "[pool] max_workers: expected an integer"),
        ("[pool]\nmax_workers = 0\n", {}, "max_workers: must be > 0"),
        ("[pool]\nmin_workers = 5\nmax_workers = 2\n", {}, "min_workers (5) must not exceed"),
        ("[gateway]\nheartbeat_min_s = 60\n", {}, "heartbeat_min_s (60.0) must not exceed"),
        ('[http]\ntrusted_proxies = ["10.0.0.0/33"]\n', {}, "not a CIDR"),
        ('[auth.tokens]\n"short" = ["submit"]\n', {}, "at least 8 characters"),
        ('[auth.tokens]\n"long-enough" = ["root"]\n', {}, "unknown scope 'root'"),
        ('[auth.tokens]\n"long-enough" = { scopes = ["root"] }\n', {}, "unknown scope 'root'"),
        ('[auth.tokens]\n"long-enough" = { scopes = ["submit"], tenant = "a/b" }\n', {}, "tenant"),
        ('[auth.tokens]\n"long-enough" = { scopes = ["submit"], tenant = "" }\n', {}, "tenant"),
        ('[auth.tokens]\n"long-enough" = { scopes = ["submit"], team = "x" }\n', {}, "'team'"),
        ('[auth.tokens]\n"long-enough" = "submit"\n', {}, "expected a list of scopes"),
        ("[tasks.x]\ntimeout_s = 3\n", {}, "exactly one of 'target' or 'command'"),
        ('[tasks.x]\ntarget = "not a target"\n', {}, "expected 'module.path:function'"),
        ("[http\n", {}, "invalid TOML"),
        ("", {"PERFGATE_HTTP_MAX_BODY_BYTES": "big"}, "PERFGATE_HTTP_MAX_BODY_BYTES: expected"),
        ("", {"PERFGATE_HTTP_BNID": "x"}, "unknown environment variable PERFGATE_HTTP_BNID"),
    ],
)
def test_invalid_configuration_is_one_clear_line(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    assert message in info.value.message
    assert "\n" not in info.value.message


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml", env={})


def test_non_loopback_without_tokens_is_refused_unless_insecure() -> None:
    exposed = load_config(None, env={}, overrides={"http": {"bind": "0.0.0.0:8080"}})
    with pytest.raises(ConfigError, match="not loopback"):
        exposed.check_exposure()
    load_config(
        None, env={}, overrides={"http": {"bind": "0.0.0.0:8080"}, "server": {"insecure": True}}
    ).check_exposure()
    load_config(
        None,
        env={},
        overrides={"http": {"bind": "0.0.0.0:8080"}, "auth": {"tokens": {"t0ken-abc": ("admin",)}}},
    ).check_exposure()


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.http = config.http  # type: ignore[misc]


def test_a_token_is_a_list_of_scopes_or_a_table_naming_its_tenant(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[auth.tokens]\n"
        '"old-style-token" = ["submit", "subscribe"]\n'
        '"acme-ci-token-1" = { scopes = ["submit"], tenant = "acme" }\n',
    )
    config = load_config(path, env={})
    assert config.auth.tokens == {
        "old-style-token": TokenGrant(("submit", "subscribe"), tenant=None),
        "acme-ci-token-1": TokenGrant(("submit",), tenant="acme"),
    }
    env = {"PERFGATE_AUTH_TOKENS": '{"acme-ci-token-1": {"scopes": ["admin"], "tenant": "acme"}}'}
    config = load_config(None, env=env)
    assert config.auth.tokens == {"acme-ci-token-1": TokenGrant(("admin",), tenant="acme")}
