"""systemd's readiness protocol (``sd_notify(3)``) for ``Type=notify`` units.

systemd passes a unix datagram socket in ``NOTIFY_SOCKET``: a path, or an abstract socket
written with a leading ``@``. perfgate sends ``READY=1`` once every component is ready (the
moment the ready file appears and ``/readyz`` answers 200) and ``STOPPING=1`` when the drain
begins. With no ``NOTIFY_SOCKET`` (not under systemd) sending is a no-op.

A notification is best effort: the socket is non-blocking, and a failure is logged once per
message and never stops the service (systemd then times the start out on its own).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import MutableMapping

from perfgate.logs import log_event

READY = "READY=1"
STOPPING = "STOPPING=1"
ENV = "NOTIFY_SOCKET"

log = logging.getLogger("perfgate.notify")


def socket_address(value: str | None) -> str | None:
    """The ``sendto`` address for a ``NOTIFY_SOCKET`` value: a filesystem path as is, an
    abstract name (``@name``) as ``"\\0name"``; None when unset or not a unix socket (systemd
    may also hand out ``vsock:`` addresses, which perfgate does not speak)."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


class Notifier:
    """Sends notifications to one address (None: every send is a no-op)."""

    def __init__(self, address: str | None) -> None:
        self.address = address

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str]) -> Notifier:
        """Take ``NOTIFY_SOCKET`` out of ``environ``, as ``sd_notify(unset_environment=1)``
        does, so that worker processes and command jobs do not inherit it."""
        raw = environ.pop(ENV, None)
        address = socket_address(raw)
        if raw and address is None:
            log_event(log, logging.WARNING, "unsupported NOTIFY_SOCKET; not notifying", value=raw)
        return cls(address)

    def __call__(self, message: str) -> None:
        if self.address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto(message.encode(), self.address)
        except OSError as exc:
            log_event(
                log,
                logging.WARNING,
                "systemd notification failed",
                notification=message,
                error=exc.strerror or str(exc),
            )
