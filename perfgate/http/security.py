"""Per-route auth: ``@requires("submit")`` authenticates the bearer token and checks a scope."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from quart import current_app, g, request

from perfgate.auth import Authenticator, Principal, bearer_token

P = ParamSpec("P")
R = TypeVar("R")


def authenticate() -> Principal:
    """The caller's principal; raises Unauthorized (401) for a missing or unknown token."""
    authenticator: Authenticator = current_app.config["PERFGATE"].authenticator
    principal = authenticator.authenticate(bearer_token(request.headers.get("Authorization")))
    g.principal = principal
    return principal


def requires(scope: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Route decorator: 401 without a valid token, 403 without ``scope`` (admin has all)."""

    def decorate(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(handler)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            authenticate().require(scope)
            return await handler(*args, **kwargs)

        return wrapper

    return decorate


def principal() -> Principal:
    """The principal :func:`requires` (or :func:`authenticate`) admitted for this request."""
    found = g.get("principal")
    if not isinstance(found, Principal):
        raise RuntimeError("principal() called on a route that did not authenticate")
    return found
