"""Request ids and the access log: one line per HTTP request.

An incoming ``X-Request-ID`` is kept when it is sane (so a proxy's id follows the request
through), otherwise a new one is made; either way it is echoed on the response. The edge
(:mod:`perfgate.http.edge`) calls these once per request, from its own hooks.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from typing import Any

from quart import request

from perfgate.logs import FIELDS_ATTRIBUTE

log = logging.getLogger("perfgate.access")
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: New ids are this process's random prefix and a counter: unique, and no ``os.urandom``
#: call per request (a ``uuid4`` was a visible share of a ``/healthz`` request's cost).
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def request_id_from(header: str | None) -> str:
    """``header`` when it is a sane id, else a new 32-hex-digit one."""
    if header and _SANE_ID.fullmatch(header):
        return header
    return f"{_PREFIX}{next(_COUNTER) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def log_request(**fields: Any) -> None:
    """The access line, at INFO. Built with ``makeRecord`` and handed to the handlers, which
    skips ``Logger.log``'s walk of the call stack for a file and line the line never shows."""
    if log.isEnabledFor(logging.INFO):
        record = log.makeRecord(
            log.name,
            logging.INFO,
            "(access)",
            0,
            "request",
            (),
            None,
            extra={FIELDS_ATTRIBUTE: fields},
        )
        log.handle(record)


def client_address() -> str:
    """The client's address as the app sees it (proxy headers are resolved by the server)."""
    return request.remote_addr or "-"
