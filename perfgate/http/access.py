"""Request ids and the access log: one line per HTTP request.

An incoming ``X-Request-ID`` is kept when it is sane (so a proxy's id follows the request
through), otherwise a new one is made; either way it is echoed on the response.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from quart import Quart, Response, g, request

from perfgate.logs import log_event

log = logging.getLogger("perfgate.access")
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(header: str | None) -> str:
    if header and _SANE_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def install_access_log(app: Quart) -> None:
    @app.before_request
    async def _start() -> None:
        g.started = time.perf_counter()
        g.request_id = request_id_from(request.headers.get("X-Request-ID"))

    @app.after_request
    async def _finish(response: Response) -> Response:
        request_id = getattr(g, "request_id", None) or request_id_from(None)
        response.headers["X-Request-ID"] = request_id
        started = getattr(g, "started", None)
        elapsed_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        rule = request.url_rule.rule if request.url_rule is not None else "-"
        log_event(
            log,
            logging.INFO,
            "request",
            request_id=request_id,
            client=client_address(),
            method=request.method,
            path=request.path,
            route=rule,
            status=response.status_code,
            ms=round(elapsed_ms, 2),
        )
        return response


def client_address() -> str:
    """The client's address as the app sees it (proxy headers are resolved by the server)."""
    return request.remote_addr or "-"
