"""The services the routes call, one typed field each, filled by the supervisor.

A component that has not started, or does not exist in this configuration, is ``None``; a
route that needs it answers 503 (:class:`perfgate.errors.Unavailable`). The types are imported
for the checker only, so this module loads none of the components.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from perfgate.broker import Hub
    from perfgate.cache import ResultCache
    from perfgate.gateway import Gateway
    from perfgate.http.edge import EdgeCounters
    from perfgate.http.events import EventStreams
    from perfgate.jobs.service import JobService
    from perfgate.monitor import Monitor
    from perfgate.pool import Pool
    from perfgate.store import JobJournal


@attrs.define
class Services:
    monitor: Monitor | None = None
    hub: Hub | None = None
    gateway: Gateway | None = None
    journal: JobJournal | None = None
    cache: ResultCache | None = None
    pool: Pool | None = None
    jobs: JobService | None = None
    #: Set by :func:`perfgate.http.app.create_app`.
    event_streams: EventStreams | None = None
    edge: EdgeCounters | None = None
    #: Where the gateway listens (``ws://HOST:PORT``), once it is bound; ``""`` before.
    ws_url: str = ""
