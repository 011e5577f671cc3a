"""Run a real nginx from deploy/nginx.conf, on a loopback port, for tests.

The test config is the deploy file with its ports and paths swapped for the test's own; each
substitution must match exactly once, so a change to deploy/nginx.conf that these tests do not
follow fails loudly instead of testing something else.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise RuntimeError("nginx is not installed (make test installs nginx-light)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _servers(upstream: str | Sequence[str]) -> str:
    """One ``server`` line per upstream address (the first one's ``server`` is the deploy file's)."""
    addresses = [upstream] if isinstance(upstream, str) else list(upstream)
    return "; server ".join(addresses)


def render_conf(
    source: str,
    *,
    port: int,
    http_upstream: str | Sequence[str],
    ws_upstream: str | Sequence[str],
    prefix: Path,
) -> str:
    """``deploy/nginx.conf`` with the listen port, the upstreams (one or several instances) and
    every path under ``prefix``."""
    temp_paths = "".join(
        f"    {kind}_temp_path {prefix / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    swaps = {
        "worker_processes auto;": "worker_processes 1;",
        "pid /run/nginx-perfgate.pid;": f"pid {prefix / 'nginx.pid'};",
        "error_log /var/log/nginx/perfgate-error.log warn;": f"error_log {prefix / 'error.log'} info;",
        "worker_connections 10240;": "worker_connections 256;",
        "access_log /var/log/nginx/perfgate-access.log;": (
            f"access_log {prefix / 'access.log'};\n{temp_paths}"
        ),
        "server 127.0.0.1:8080;": f"server {_servers(http_upstream)};",
        "server 127.0.0.1:8081;": f"server {_servers(ws_upstream)};",
        "listen 80;": f"listen 127.0.0.1:{port};",
    }
    text = source
    for old, new in swaps.items():
        count = text.count(old)
        if count != 1:
            raise AssertionError(f"deploy/nginx.conf: expected {old!r} once, found {count}")
        text = text.replace(old, new)
    if os.geteuid() == 0:
        # As root, nginx would run its workers as "nobody", who cannot enter pytest's tmp dirs.
        text = "user root;\n" + text
    return text


class Nginx:
    """``nginx -g 'daemon off;'`` in the foreground, with its prefix, pid, logs and temp files
    under ``prefix``. Use as a context manager; it is stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(
        self,
        prefix: Path,
        *,
        http_upstream: str | Sequence[str],
        ws_upstream: str | Sequence[str],
    ) -> None:
        self.prefix = prefix
        self.port = free_port()
        self.conf = prefix / "nginx.conf"
        prefix.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            render_conf(
                DEPLOY_CONF.read_text(),
                port=self.port,
                http_upstream=http_upstream,
                ws_upstream=ws_upstream,
                prefix=prefix,
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> Nginx:
        argv = [nginx_binary(), "-p", f"{self.prefix}/", "-c", str(self.conf)]
        argv += ["-e", str(self.prefix / "error.log"), "-g", "daemon off;"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"nginx exited {self.proc.returncode}: {err}{self.error_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("nginx did not start listening") from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""
