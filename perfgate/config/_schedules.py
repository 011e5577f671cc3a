"""``[schedules.NAME]``: periodic jobs, as configuration data (see :mod:`perfgate.jobs.scheduler`
for how they fire). Values are checked here; that the task exists and takes the arguments is
checked against the tasks at start (:func:`perfgate.jobs.scheduler.check_schedules`)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import attrs
from cronsim import CronSim, CronSimError

from perfgate.config._auth import DEFAULT_TENANT
from perfgate.errors import ConfigError
from perfgate.priorities import PRIORITIES

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_TENANT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CATCH_UP = ("skip", "last")


@attrs.frozen
class ScheduleConfig:
    """A job submitted on a timetable: ``cron`` (five fields, UTC) or ``every_s``."""

    name: str
    task: str
    args: Mapping[str, Any] = attrs.field(factory=dict)
    cron: str | None = None
    every_s: float | None = None
    priority: str | None = None
    timeout_s: float | None = None
    max_retries: int | None = None
    #: Due times missed while no instance ran: "skip" them, or run the "last" one at start.
    catch_up: str = "skip"
    #: Whose jobs they are (who sees them through the API; see [auth] tokens).
    tenant: str = DEFAULT_TENANT

    def __attrs_post_init__(self) -> None:
        where = f"[schedules.{self.name}]"
        if not _NAME.fullmatch(self.name):
            raise ConfigError(f"{where}: a name is letters, digits, '_', '.', '-'")
        if (self.cron is None) == (self.every_s is None):
            raise ConfigError(f"{where}: give exactly one of 'cron' or 'every_s'")
        if self.cron is not None:
            try:
                CronSim(self.cron, dt.datetime.now(dt.UTC))
            except (CronSimError, ValueError) as exc:
                raise ConfigError(f"{where} cron {self.cron!r}: {exc}") from None
        if self.every_s is not None and not self.every_s >= 1:
            raise ConfigError(f"{where} every_s: must be >= 1, got {self.every_s!r}")
        if self.priority is not None and self.priority not in PRIORITIES:
            raise ConfigError(f"{where} priority: one of {', '.join(PRIORITIES)}")
        if self.timeout_s is not None and not 0 < self.timeout_s <= 86_400:
            raise ConfigError(f"{where} timeout_s: must be in (0, 86400]")
        if self.max_retries is not None and not 0 <= self.max_retries <= 100:
            raise ConfigError(f"{where} max_retries: must be between 0 and 100")
        if self.catch_up not in CATCH_UP:
            raise ConfigError(f"{where} catch_up: one of {', '.join(CATCH_UP)}")
        if not _TENANT.fullmatch(self.tenant):
            raise ConfigError(f"{where} tenant: 1-64 letters, digits, '_', '.' or '-'")
