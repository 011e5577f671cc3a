"""How a task says "do not retry me". Imported by worker processes: no trio here."""

from __future__ import annotations

from typing import Any


class PermanentError(Exception):
    """Raise (or subclass) this in a task for a failure that retrying cannot fix.

    Any exception with a truthy ``permanent`` attribute is treated the same way, so a task can
    mark an exception it did not define: ``exc.permanent = True; raise exc``.
    """

    permanent = True


def is_permanent(exc: BaseException) -> bool:
    value: Any = getattr(exc, "permanent", False)
    return bool(value)


def mark_permanent(exc: BaseException) -> None:
    """Mark an exception the task did not define as not worth retrying."""
    exc.__dict__["permanent"] = True
