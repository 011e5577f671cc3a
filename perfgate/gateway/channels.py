"""Channel names and who may use them.

A name is 1-128 characters of letters, digits and ``_ - . : @ / = +``, optionally starting
with ``$``. Namespaces: ``jobs:*`` carries job events and only the server publishes to it;
``$sys:*`` is reserved for admin tokens (both ways).

Tenancy: ``jobs:{id}`` is the job's, so only its tenant and ``admin`` tokens may subscribe
(:func:`check_job_channel`); for anyone else it is "no such job", as the HTTP API answers.
Every other channel is shared by every token with the scope: channels are how clients talk to
one another, and the server puts no tenant's data on them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from perfgate.auth import Principal
from perfgate.errors import Forbidden, NotFound, ValidationError

MAX_CHANNEL_CHARS = 128
_NAME = re.compile(r"\$?[A-Za-z0-9_.:@/=+-]{1,128}")
SERVER_ONLY_PREFIX = "jobs:"
ADMIN_PREFIX = "$sys:"

JobTenant = Callable[[str], Awaitable[str | None]]
"""Looks up the tenant owning a job id (``None``: no such job)."""


def check_name(channel: object) -> str:
    """Return ``channel`` if it is a valid name; raise :class:`ValidationError` otherwise."""
    if not isinstance(channel, str):
        raise ValidationError("channel must be a string")
    if len(channel) > MAX_CHANNEL_CHARS or not _NAME.fullmatch(channel):
        raise ValidationError(
            f"invalid channel name (1-{MAX_CHANNEL_CHARS} characters: letters, digits, "
            "'_', '-', '.', ':', '@', '/', '=', '+', optionally a leading '$')"
        )
    if channel.startswith("$") and not channel.startswith(ADMIN_PREFIX):
        raise ValidationError(f"the '$' prefix is reserved (only {ADMIN_PREFIX}* exists)")
    return channel


def check_subscribe(principal: Principal, channel: object) -> str:
    """Validate a subscription; raise ValidationError (bad name) or Forbidden."""
    name = check_name(channel)
    principal.require("subscribe")
    if name.startswith(ADMIN_PREFIX):
        principal.require("admin")
    return name


def check_client_publish(principal: Principal, channel: object) -> str:
    """Validate a publish from a WebSocket client; ``jobs:*`` is never client-writable."""
    name = check_name(channel)
    principal.require("publish")
    if name.startswith(SERVER_ONLY_PREFIX):
        raise Forbidden(f"{SERVER_ONLY_PREFIX}* channels are published by the server only")
    if name.startswith(ADMIN_PREFIX):
        principal.require("admin")
    return name


def check_publish(principal: Principal | None, channel: object) -> str:
    """Validate a server-side publish (the HTTP route).

    ``principal=None`` means the server itself (the job engine), which may publish anywhere,
    including ``jobs:*``. An HTTP caller is held to the same rules as a WebSocket client.
    """
    if principal is None:
        return check_name(channel)
    return check_client_publish(principal, channel)


def job_id_of(channel: str) -> str | None:
    """``"jobs:ID"`` → ``"ID"``; ``None`` for a channel that is not a job's."""
    if channel.startswith(SERVER_ONLY_PREFIX):
        return channel[len(SERVER_ONLY_PREFIX) :]
    return None


async def check_job_channel(
    principal: Principal, channel: str, job_tenant: JobTenant | None
) -> None:
    """Raise :class:`NotFound` unless ``principal`` may read ``channel``: any non-job channel,
    or a job channel of its own tenant (``admin``: every one). Without a ``job_tenant``
    lookup (a gateway with no job service) a non-admin token reads no job channel."""
    job_id = job_id_of(channel)
    tenant = principal.tenant_filter
    if job_id is None or tenant is None:
        return
    owner = None if job_tenant is None else await job_tenant(job_id)
    if owner != tenant:
        raise NotFound(f"no job {job_id!r}")
