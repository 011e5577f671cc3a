"""``GET /openapi.json``: the OpenAPI 3.1 document, generated from the routes themselves.

Each route declares what it takes and returns with :func:`document`; request bodies are the
same :class:`~perfgate.schema.Body` tables that validate input, so the document cannot drift
from the code. Routes without a declaration are left out (and a test says none are).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
from quart import Quart

from perfgate import __version__
from perfgate.schema import Body

F = TypeVar("F", bound=Callable[..., Any])
_ATTR = "__perfgate_openapi__"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "required": ["type", "title", "status", "detail", "code"],
}

_STATUS_TEXT = {
    200: "OK",
    202: "Accepted",
    304: "Not modified",
    400: "Malformed request",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "Not JSON",
    422: "Invalid fields",
    429: "Too many requests",
    503: "Unavailable",
}


@attrs.frozen
class Operation:
    summary: str
    responses: Mapping[int, Mapping[str, Any] | None]  # status -> JSON schema (None: no body)
    body: Body | None = None
    scope: str | None = None
    query: Sequence[Mapping[str, Any]] = ()
    tags: Sequence[str] = ()
    content_type: str = "application/json"
    params: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    links: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)


def document(
    summary: str,
    *,
    responses: Mapping[int, Mapping[str, Any] | None],
    body: Body | None = None,
    scope: str | None = None,
    query: Sequence[Mapping[str, Any]] = (),
    tags: Sequence[str] = (),
    content_type: str = "application/json",
    params: Mapping[str, Mapping[str, Any]] | None = None,
    links: Mapping[str, Mapping[str, Any]] | None = None,
) -> Callable[[F], F]:
    """Attach an OpenAPI operation to a route handler (put it under ``@app.route``).

    ``params`` gives a JSON schema per path parameter (default: a string of at most 200
    characters); ``links`` are OpenAPI links of the first 2xx response (they name other
    operations by ``operationId``, which is the handler's name).
    """

    def attach(fn: F) -> F:
        setattr(
            fn,
            _ATTR,
            Operation(
                summary,
                responses,
                body,
                scope,
                query,
                tags,
                content_type,
                dict(params or {}),
                dict(links or {}),
            ),
        )
        return fn

    return attach


def operation_of(fn: Callable[..., Any]) -> Operation | None:
    seen: Any = fn
    while seen is not None:
        op = getattr(seen, _ATTR, None)
        if op is not None:
            return op  # type: ignore[no-any-return]
        seen = getattr(seen, "__wrapped__", None)
    return None


def _path_template(rule: str) -> tuple[str, list[str]]:
    names: list[str] = []

    def repl(match: re.Match[str]) -> str:
        names.append(match.group(2))
        return "{" + match.group(2) + "}"

    return re.sub(r"<(?:(\w+):)?(\w+)>", repl, rule), names


def build_openapi(
    app: Quart, *, auth_enabled: bool, body_enums: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    """The document for ``app``'s declared routes. ``body_enums`` narrows request-body fields
    to the values this configuration accepts (``{"task": [configured task names]}``), so that
    a schema-valid body is one the server takes."""
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        op = operation_of(view) if view is not None else None
        if op is None:
            continue
        path, params = _path_template(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = _operation(op, params, auth_enabled, body_enums or {})
            operation["operationId"] = rule.endpoint.rsplit(".", 1)[-1]
            paths.setdefault(path, {})[method.lower()] = operation
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "perfgate",
            "version": __version__,
            "description": "A realtime job gateway: submit, watch and cancel jobs; publish to "
            "channels. Errors are RFC 9457 problem documents.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Problem": PROBLEM_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    return doc


def _operation(
    op: Operation,
    params: list[str],
    auth_enabled: bool,
    body_enums: Mapping[str, Sequence[str]],
) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary, "responses": {}}
    if op.tags:
        out["tags"] = list(op.tags)
    parameters: list[dict[str, Any]] = [
        {
            "name": p,
            "in": "path",
            "required": True,
            "schema": dict(op.params.get(p, {"type": "string", "maxLength": 200})),
        }
        for p in params
    ]
    parameters.extend(dict(q) for q in op.query)
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _narrowed(op.body, body_enums)}},
        }
    statuses = dict(op.responses)
    if op.body is not None:
        statuses.update({400: None, 413: None, 415: None, 422: None})
    if op.scope is not None and auth_enabled:
        out["security"] = [{"bearer": []}]
        statuses.update({401: None, 403: None})
    if op.scope is not None:
        statuses.setdefault(429, None)
    for status, schema in sorted(statuses.items()):
        response: dict[str, Any] = {"description": _STATUS_TEXT.get(status, str(status))}
        if status >= 400:
            response["content"] = {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }
        elif schema is not None:
            response["content"] = {op.content_type: {"schema": dict(schema)}}
        if op.links and 200 <= status < 300:
            response["links"] = {name: dict(link) for name, link in op.links.items()}
        out["responses"][str(status)] = response
    return out


def _narrowed(body: Body, enums: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    schema = body.json_schema()
    for name, values in enums.items():
        field = schema["properties"].get(name)
        if field is not None and values:
            schema["properties"][name] = {**field, "enum": list(values)}
    return schema
