"""The HTTP edge: what every response passes through on its way out, and every request on its
way in. Request ids, CORS (with preflight), per-client rate limits, ETag/304, gzip and
``Vary``, the access log and the monitor's request timings.

The decisions are pure functions in :mod:`perfgate.http.negotiation`; this module only applies
them to Quart's request and response objects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio
from quart import Quart, Response, g, request
from quart.wrappers.response import DataBody
from werkzeug.datastructures import Headers

from perfgate.config import HttpConfig
from perfgate.errors import RateLimited
from perfgate.http import negotiation as neg
from perfgate.http.access import log_request, request_id_from
from perfgate.logs import log_event
from perfgate.ratelimit import KeyedBuckets
from perfgate.snapshots import EdgeSnapshot

if TYPE_CHECKING:  # the monitor's routes import the OpenAPI helpers, which import this module
    from perfgate.monitor import Monitor

log = logging.getLogger("perfgate.http")

#: Probes and scrapes are never rate limited: a throttled health check takes a healthy node out.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: Submits and publishes cost more than reads: they create work.
WRITE_COST = 5.0
LOG_EVERY_S = 60.0


class EdgeCounters:
    def __init__(self) -> None:
        self.rate_limited = 0
        self.not_modified = 0
        self.compressed = 0

    def stats(self) -> EdgeSnapshot:
        """For the monitor (``/metrics``): counters since start."""
        return EdgeSnapshot(
            rate_limited=self.rate_limited,
            not_modified=self.not_modified,
            compressed=self.compressed,
        )


class _Seen:
    """What the edge notes about one request on its way in (one ``g`` attribute)."""

    __slots__ = ("headers", "method", "monitored", "path", "preflight", "request_id", "started")

    def __init__(
        self, started: float, headers: dict[str, str], method: str, path: str, request_id: str
    ) -> None:
        self.started = started
        self.headers = headers
        self.method = method
        self.path = path
        self.request_id = request_id
        self.preflight = False
        self.monitored = False


def install_edge(app: Quart, config: HttpConfig, monitor: Monitor | None = None) -> EdgeCounters:
    """One ``before_request``, one ``after_request`` and one ``teardown_request`` hook for
    everything the edge does: request id, preflight, rate limit; ETag/304, gzip, CORS,
    ``Cache-Control``, the access line and, given a ``monitor``, its per-route timings and
    in-flight gauge. One set of hooks, not one per concern: each hook Quart runs costs a few
    microseconds whether it has work or not, and ``/healthz`` is only a few dozen of them.
    """
    from perfgate.monitor.routes import UNMATCHED

    counters = EdgeCounters()
    buckets = KeyedBuckets(config.rate_limit_per_s, config.rate_burst)
    last_logged: dict[str, float] = {}

    @app.before_request
    async def _arrived() -> Response | None:
        started = time.perf_counter()
        headers = _scope_headers(request.scope)
        method = request.method
        path = request.path
        seen = g.perfgate_edge = _Seen(
            started, headers, method, path, request_id_from(headers.get("x-request-id"))
        )
        if monitor is not None:
            monitor.http_started()
            seen.monitored = True
        if method == "OPTIONS" and headers.get("access-control-request-method"):
            response = Response(b"", status=204)
            allowed = neg.cors_origin(headers.get("origin"), config.cors_origins)
            if allowed is not None:
                response.headers.update(
                    neg.preflight_headers(allowed, headers.get("access-control-request-headers"))
                )
            response.headers["Vary"] = "Origin"
            seen.preflight = True
            return response
        if buckets.enabled and path not in UNLIMITED_PATHS:
            client = request.remote_addr or "-"
            cost = WRITE_COST if method in ("POST", "DELETE") else 1.0
            now = trio.current_time()
            wait_s = buckets.take(client, now, cost)
            if wait_s > 0:
                counters.rate_limited += 1
                if now - last_logged.get(client, -LOG_EVERY_S) >= LOG_EVERY_S:
                    if len(last_logged) > 10_000:
                        last_logged.clear()
                    last_logged[client] = now
                    log_event(log, logging.WARNING, "rate limited", client=client, path=path)
                raise RateLimited(
                    f"rate limit of {config.rate_limit_per_s:g}/s exceeded", retry_after_s=wait_s
                )
        return None

    @app.after_request
    async def _leaving(response: Response) -> Response:
        seen: _Seen | None = g.get("perfgate_edge")
        if seen is None:  # a before_request hook of Quart's own failed before ours ran
            seen = _Seen(
                time.perf_counter(),
                _scope_headers(request.scope),
                request.method,
                request.path,
                request_id_from(None),
            )
        headers = response.headers
        if not seen.preflight:
            asked = seen.headers
            has = _lowered(headers)
            if seen.method in ("GET", "HEAD") and response.status_code == 200:
                response = await _conditional(response, asked, has, counters)
                headers = response.headers
            await _compress(response, asked, has, counters)
            _cors(response, asked, has, config)
            if "cache-control" not in has:
                headers.add("Cache-Control", "no-cache")
        headers.add("X-Request-ID", seen.request_id)
        url_rule = request.url_rule
        rule = url_rule.rule if url_rule is not None else None
        elapsed_s = time.perf_counter() - seen.started
        status = response.status_code
        log_request(
            request_id=seen.request_id,
            client=request.remote_addr or "-",
            method=seen.method,
            path=seen.path,
            route=rule or "-",
            status=status,
            ms=round(elapsed_s * 1000, 2),
        )
        if monitor is not None and seen.monitored:
            monitor.observe_http(rule or UNMATCHED, seen.method, status, elapsed_s)
        return response

    if monitor is not None:

        @app.teardown_request
        async def _gone(_exc: BaseException | None) -> None:
            # Runs even when the request was cancelled or crashed: the gauge cannot drift.
            seen: _Seen | None = g.get("perfgate_edge")
            if seen is not None and seen.monitored:
                seen.monitored = False
                monitor.http_finished()

    return counters


def _scope_headers(scope: Mapping[str, Any]) -> dict[str, str]:
    """The request's headers as a plain dict by name (the last value of a repeated one), read
    from the ASGI scope: the server hands names lower-cased (ASGI says so), and this skips
    werkzeug's ``Headers`` and a ``lower()`` per header."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _set(headers: Headers, has: dict[str, str], name: str, value: str) -> None:
    """``headers[name] = value``, but an ``add`` when ``has`` says the name is not there yet
    (werkzeug's ``__setitem__`` scans the list to drop an old value first)."""
    lowered = name.lower()
    if lowered in has:
        headers[name] = value
    else:
        headers.add(name, value)
    has[lowered] = value


def _lowered(headers: Headers) -> dict[str, str]:
    """The headers as a plain dict by lower-cased name (the last value of a repeated one).
    One pass, then lookups that cost nothing: a miss in werkzeug's ``Headers`` raises and
    catches an exception inside, about a microsecond each, and the edge asks for a dozen
    headers most requests do not have."""
    return {name.lower(): value for name, value in headers.items()}


async def _conditional(
    response: Response, asked: dict[str, str], has: dict[str, str], counters: EdgeCounters
) -> Response:
    if not _buffered(response) or "content-encoding" in has:
        return response
    etag = has.get("etag")
    if etag is None:
        etag = neg.strong_etag(_body(response))
        _set(response.headers, has, "ETag", etag)
    if neg.etag_matches(asked.get("if-none-match"), etag):
        counters.not_modified += 1
        not_modified = Response(b"", status=304)
        for name in ("ETag", "Cache-Control", "Vary", "Content-Location", "Expires"):
            value = has.get(name.lower())
            if value is not None:
                not_modified.headers[name] = value
        return not_modified
    return response


async def _compress(
    response: Response, asked: dict[str, str], has: dict[str, str], counters: EdgeCounters
) -> None:
    if not neg.is_compressible(has.get("content-type")) or response.status_code in (204, 304):
        return
    _set(response.headers, has, "Vary", neg.add_vary(has.get("vary"), "Accept-Encoding"))
    if not _buffered(response) or "content-encoding" in has:
        return
    if not neg.accepts_gzip(asked.get("accept-encoding")):
        return
    body = _body(response)
    if len(body) < neg.COMPRESS_MIN_BYTES:
        return
    response.set_data(neg.gzip_body(body))
    response.headers["Content-Encoding"] = "gzip"
    if "etag" in has:
        response.headers["ETag"] = neg.coded_etag(has["etag"])
    counters.compressed += 1


def _cors(
    response: Response, asked: dict[str, str], has: dict[str, str], config: HttpConfig
) -> None:
    if not config.cors_origins:
        return
    allowed = neg.cors_origin(asked.get("origin"), config.cors_origins)
    _set(response.headers, has, "Vary", neg.add_vary(has.get("vary"), "Origin"))
    if allowed is not None:
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.headers["Access-Control-Expose-Headers"] = neg.CORS_EXPOSED_HEADERS


def _body(response: Response) -> bytes:
    """A buffered response's body as it is held (``get_data`` would copy it through an async
    iteration of one chunk)."""
    body = response.response
    assert isinstance(body, DataBody)
    return body.data[body.begin : body.end]


def _buffered(response: Response) -> bool:
    """True for a body held in memory; streamed bodies (files, generators) pass untouched."""
    return isinstance(response.response, DataBody)
