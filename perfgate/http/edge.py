"""The HTTP edge: what every response passes through on its way out, and every request on its
way in. CORS (with preflight), per-client rate limits, ETag/304, gzip and ``Vary``.

The decisions are pure functions in :mod:`perfgate.http.negotiation`; this module only applies
them to Quart's request and response objects.
"""

from __future__ import annotations

import logging

import trio
from quart import Quart, Response, g, request
from quart.wrappers.response import DataBody

from perfgate.config import HttpConfig
from perfgate.errors import RateLimited
from perfgate.http import negotiation as neg
from perfgate.logs import log_event
from perfgate.ratelimit import KeyedBuckets
from perfgate.snapshots import EdgeSnapshot

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


def install_edge(app: Quart, config: HttpConfig) -> EdgeCounters:
    counters = EdgeCounters()
    buckets = KeyedBuckets(config.rate_limit_per_s, config.rate_burst)
    last_logged: dict[str, float] = {}

    @app.before_request
    async def _preflight_and_limits() -> Response | None:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            response = Response(b"", status=204)
            allowed = neg.cors_origin(origin, config.cors_origins)
            if allowed is not None:
                response.headers.update(
                    neg.preflight_headers(
                        allowed, request.headers.get("Access-Control-Request-Headers")
                    )
                )
            response.headers["Vary"] = "Origin"
            g.preflight = True
            return response
        if buckets.enabled and request.path not in UNLIMITED_PATHS:
            client = request.remote_addr or "-"
            cost = WRITE_COST if request.method in ("POST", "DELETE") else 1.0
            now = trio.current_time()
            wait_s = buckets.take(client, now, cost)
            if wait_s > 0:
                counters.rate_limited += 1
                if now - last_logged.get(client, -LOG_EVERY_S) >= LOG_EVERY_S:
                    if len(last_logged) > 10_000:
                        last_logged.clear()
                    last_logged[client] = now
                    log_event(
                        log, logging.WARNING, "rate limited", client=client, path=request.path
                    )
                raise RateLimited(
                    f"rate limit of {config.rate_limit_per_s:g}/s exceeded", retry_after_s=wait_s
                )
        return None

    @app.after_request
    async def _finish(response: Response) -> Response:
        if g.get("preflight"):
            return response
        if request.method in ("GET", "HEAD") and response.status_code == 200:
            response = await _conditional(response, counters)
        await _compress(response, counters)
        _cors(response, config)
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-cache"
        return response

    return counters


async def _conditional(response: Response, counters: EdgeCounters) -> Response:
    if not _buffered(response) or response.headers.get("Content-Encoding"):
        return response
    if "ETag" not in response.headers:
        response.headers["ETag"] = neg.strong_etag(await response.get_data(as_text=False))
    etag = response.headers["ETag"]
    if neg.etag_matches(request.headers.get("If-None-Match"), etag):
        counters.not_modified += 1
        not_modified = Response(b"", status=304)
        for name in ("ETag", "Cache-Control", "Vary", "Content-Location", "Expires"):
            if name in response.headers:
                not_modified.headers[name] = response.headers[name]
        return not_modified
    return response


async def _compress(response: Response, counters: EdgeCounters) -> None:
    content_type = response.headers.get("Content-Type")
    if not neg.is_compressible(content_type) or response.status_code in (204, 304):
        return
    response.headers["Vary"] = neg.add_vary(response.headers.get("Vary"), "Accept-Encoding")
    if not _buffered(response) or response.headers.get("Content-Encoding"):
        return
    if not neg.accepts_gzip(request.headers.get("Accept-Encoding")):
        return
    body = await response.get_data(as_text=False)
    if len(body) < neg.COMPRESS_MIN_BYTES:
        return
    response.set_data(neg.gzip_body(body))
    response.headers["Content-Encoding"] = "gzip"
    if "ETag" in response.headers:
        response.headers["ETag"] = neg.coded_etag(response.headers["ETag"])
    counters.compressed += 1


def _cors(response: Response, config: HttpConfig) -> None:
    allowed = neg.cors_origin(request.headers.get("Origin"), config.cors_origins)
    if config.cors_origins:
        response.headers["Vary"] = neg.add_vary(response.headers.get("Vary"), "Origin")
    if allowed is not None:
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.headers["Access-Control-Expose-Headers"] = neg.CORS_EXPOSED_HEADERS


def _buffered(response: Response) -> bool:
    """True for a body held in memory; streamed bodies (files, generators) pass untouched."""
    return isinstance(response.response, DataBody)
