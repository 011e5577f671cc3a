"""deploy/ and the Dockerfile, tested as far as a machine without a container runtime allows:
the files parse, every command they run is one ``perfgate serve`` accepts, every variable they
set is a configuration key with a valid value, and the timings agree with the configuration."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfgate import cli
from perfgate.config import Config, TokenGrant, load_config
from tests.helpers import start_server, stop_server

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"
TOKEN = "a-long-enough-test-token"


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def serve_config(argv: list[str], env: dict[str, str]) -> Config:
    """What ``perfgate serve ARGV`` with ``env`` would run with; raises on a bad flag or key."""
    assert argv[:2] == ["perfgate", "serve"], argv
    try:
        args = cli._parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"perfgate refuses {argv}")
    config = load_config(args.config, env=env, overrides=cli._overrides(args))
    config.check_exposure()
    return config


def image_env(steps: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in steps:
        if word == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
    return env


STEPS = dockerfile(ROOT / "Dockerfile")


def one(word: str) -> str:
    found = [rest for w, rest in STEPS if w == word]
    assert len(found) == 1, word
    return found[0]


def test_the_image_is_slim_and_runs_as_a_user() -> None:
    assert [rest.split()[0] for w, rest in STEPS if w == "FROM"] == ["python:3.11-slim"] * 2
    assert one("USER") not in ("root", "0")
    for word, rest in STEPS:
        if word == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source


def image_argv() -> list[str]:
    entrypoint, command = json.loads(one("ENTRYPOINT")), json.loads(one("CMD"))
    # Exec form behind tini: SIGTERM reaches perfgate, and orphans are reaped.
    assert entrypoint[:2] == ["tini", "--"]
    return [*entrypoint[2:], *command]


def test_the_images_command_is_one_perfgate_serve_accepts() -> None:
    env = {k: v for k, v in image_env(STEPS).items() if k.startswith("PERFGATE_")}
    config = serve_config(
        image_argv(), {**env, "PERFGATE_AUTH_TOKENS": json.dumps({TOKEN: ["admin"]})}
    )
    assert config.http.bind == "0.0.0.0:8080" and config.gateway.bind == "0.0.0.0:8081"
    assert re.search(r"EXPOSE 8080 8081", "EXPOSE " + one("EXPOSE"))
    # Without a token the image refuses to serve on every interface, as documented.
    with pytest.raises(Exception, match="no \\[auth\\] tokens"):
        serve_config(image_argv(), env)


def test_the_healthcheck_asks_readyz_and_follows_it(tmp_path: Path) -> None:
    _options, _, command = one("HEALTHCHECK").partition("CMD ")
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"] and "/readyz" in argv[2]
    proc, ready = start_server(tmp_path)
    try:
        code = argv[2].replace("http://127.0.0.1:8080", ready["http"])
        assert code != argv[2]
        assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
    finally:
        assert stop_server(proc)[0] == 0
    # Nothing listening (or 503) is unhealthy.
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode != 0


COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = {k: str(v) for k, v in service.get("environment", {}).items()}
    return {k: re.sub(r"\$\{PERFGATE_TOKEN[^}]*\}", TOKEN, v) for k, v in env.items()}


def test_compose_runs_two_perfgates_redis_and_nginx() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"redis", "perfgate-a", "perfgate-b", "nginx"}
    for name in ("perfgate-a", "perfgate-b"):
        service = services[name]
        assert (DEPLOY / service["build"]["context"]).resolve() == ROOT.resolve()
        assert service["build"]["dockerfile"] == "Dockerfile"
        entrypoint = json.loads(one("ENTRYPOINT"))[2:]
        config = serve_config([*entrypoint, *service["command"]], compose_env(service))
        assert config.server.broker == "redis://redis:6379/0"
        assert config.auth.tokens == {TOKEN: TokenGrant(("admin",))}
        assert "redis" in service["depends_on"]
        grace_s = float(service["stop_grace_period"].removesuffix("s"))
        assert grace_s > config.pool.drain_timeout_s + config.pool.kill_grace_s
    nginx = services["nginx"]
    assert (DEPLOY / nginx["build"]["context"] / nginx["build"]["dockerfile"]).exists()
    assert set(nginx["depends_on"]) == {"perfgate-a", "perfgate-b"}
    assert all(port.startswith("127.0.0.1:") for port in nginx["ports"])


def test_the_nginx_image_is_deploy_nginx_conf_pointed_at_both_instances() -> None:
    steps = dockerfile(DEPLOY / "nginx" / "Dockerfile")
    assert ("COPY", "nginx.conf /etc/nginx/nginx.conf") in steps
    conf = (DEPLOY / "nginx.conf").read_text()
    run = " ".join(rest for word, rest in steps if word == "RUN")
    swaps = re.findall(r"-e 's\|([^|]*)\|([^|]*)\|'", run)
    assert len(swaps) == 2
    a, b = (COMPOSE["services"][n] for n in ("perfgate-a", "perfgate-b"))
    http_port = serve_config(["perfgate", "serve", *a["command"]], compose_env(a)).http.bind
    for old, new in swaps:
        assert conf.count(old) == 1, old  # the deploy file still has the line replaced
        hosts = re.findall(r"server ([\w-]+):(\d+);", new)
        assert {h for h, _ in hosts} == {"perfgate-a", "perfgate-b"}
        assert {p for _, p in hosts} <= {"8080", "8081"}
    assert http_port.endswith(":8080")
    assert b["command"] == a["command"]


def test_the_systemd_unit_runs_a_command_perfgate_accepts() -> None:
    unit = (DEPLOY / "perfgate.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0].isalpha()
    )
    assert (settings["Type"], settings["NotifyAccess"], settings["KillMode"]) == (
        "notify",
        "main",
        "mixed",
    )
    argv = shlex.split(settings["ExecStart"])
    assert argv[0].endswith("/bin/perfgate")
    args = cli._parser().parse_args(argv[1:])
    assert args.config == "/etc/perfgate/perfgate.toml"
    config = load_config(None, env={}, overrides=cli._overrides(args))
    stop_s = float(settings["TimeoutStopSec"])
    assert stop_s > config.pool.drain_timeout_s + config.pool.kill_grace_s
