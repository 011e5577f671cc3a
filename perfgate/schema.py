"""Request bodies described once, as data: the same table validates input and feeds OpenAPI.

A :class:`Body` is a list of :class:`Field` specs. ``Body.parse(raw)`` returns a plain dict of
checked values or raises :class:`~perfgate.errors.ValidationError` (422) naming every bad field;
``Body.json_schema()`` is what ``/openapi.json`` publishes. Pure: no I/O, no framework.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from perfgate.errors import ValidationError
from perfgate.jsontext import json_type
from perfgate.priorities import PRIORITIES

_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


@attrs.frozen
class Field:
    name: str
    type: str  # a JSON Schema type: string, integer, number, boolean, object, or "any"
    description: str
    required: bool = False
    default: Any = None
    enum: Sequence[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    max_length: int | None = None
    min_length: int | None = None
    nullable: bool = False
    #: For an ``array``: the JSON schema of its items (checked by the caller) and its bounds.
    items: Mapping[str, Any] | None = None
    min_items: int | None = None
    max_items: int | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description}
        if self.type != "any":
            out["type"] = [self.type, "null"] if self.nullable else self.type
        for key, value in (
            ("enum", self._enum_values()),
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("exclusiveMinimum", self.exclusive_minimum),
            ("maxLength", self.max_length),
            ("minLength", self.min_length),
            ("default", self.default),
            ("items", None if self.items is None else dict(self.items)),
            ("minItems", self.min_items),
            ("maxItems", self.max_items),
        ):
            if value is not None:
                out[key] = value
        return out

    def _enum_values(self) -> list[Any] | None:
        # JSON Schema checks ``enum`` beside ``type``: a nullable field lists null too, or
        # the document would refuse the null the parser accepts.
        if not self.enum:
            return None
        return [*self.enum, None] if self.nullable else list(self.enum)

    def check(self, value: Any) -> str | None:
        """Return a problem with ``value`` in words, or None when it is acceptable."""
        if value is None and self.nullable:
            return None
        if self.type == "any":
            return None
        expected = _JSON_TYPES[self.type]
        if isinstance(value, bool) and self.type != "boolean":
            return f"expected {self.type}, got boolean"
        if not isinstance(value, expected) and not _integral_float(self.type, value):
            return f"expected {self.type}, got {json_type(value)}"
        return self._check_range(value)

    def _check_range(self, value: Any) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if self.enum is not None and value not in self.enum:
            return f"must be one of {', '.join(self.enum)}"
        if self.minimum is not None and value < self.minimum:
            return f"must be >= {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be <= {self.maximum:g}"
        if self.exclusive_minimum is not None and value <= self.exclusive_minimum:
            return f"must be > {self.exclusive_minimum:g}"
        if self.max_length is not None and len(value) > self.max_length:
            return f"must be at most {self.max_length} characters"
        if self.min_length is not None and len(value) < self.min_length:
            return f"must be at least {self.min_length} characters"
        if self.min_items is not None and len(value) < self.min_items:
            return f"must hold at least {self.min_items} items"
        if self.max_items is not None and len(value) > self.max_items:
            return f"must hold at most {self.max_items} items"
        return None


def _integral_float(json_type: str, value: Any) -> bool:
    """JSON Schema counts 3.0 as an integer: so do we (the parsed value becomes 3)."""
    return json_type == "integer" and isinstance(value, float) and value.is_integer()


@attrs.frozen
class Body:
    name: str
    fields: Sequence[Field]
    description: str = ""

    def parse(self, raw: Any) -> dict[str, Any]:
        """Check a decoded JSON body; unknown fields are refused so that typos are caught."""
        if not isinstance(raw, Mapping):
            raise ValidationError(
                f"the body must be a JSON object, got {json_type(raw)}",
                errors=[{"field": "", "message": "expected a JSON object"}],
            )
        errors: list[dict[str, str]] = []
        known = {f.name for f in self.fields}
        errors.extend(
            {"field": str(key), "message": "unknown field"} for key in raw if key not in known
        )
        out: dict[str, Any] = {}
        for field in self.fields:
            if field.name not in raw:
                if field.required:
                    errors.append({"field": field.name, "message": "required"})
                else:
                    out[field.name] = field.default
                continue
            value = raw[field.name]
            problem = field.check(value)
            if problem is not None:
                errors.append({"field": field.name, "message": problem})
            else:
                out[field.name] = int(value) if _integral_float(field.type, value) else value
        if errors:
            summary = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors[:5])
            raise ValidationError(summary, errors=errors)
        return out

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {f.name: f.schema() for f in self.fields},
        }
        required = [f.name for f in self.fields if f.required]
        if required:
            schema["required"] = required
        if self.description:
            schema["description"] = self.description
        return schema


SUBMIT_JOB = Body(
    name="SubmitJob",
    description="A job to run: a configured task and its arguments.",
    fields=[
        Field(
            "task",
            "string",
            "a task name from the [tasks] configuration",
            required=True,
            min_length=1,
            max_length=64,
        ),
        Field("args", "object", "keyword arguments for the task", default=None, nullable=True),
        Field(
            "priority",
            "string",
            "queue priority (default: the task's)",
            enum=PRIORITIES,
            nullable=True,
        ),
        Field(
            "timeout_s",
            "number",
            "per-attempt timeout (default: the task's)",
            exclusive_minimum=0,
            maximum=86_400,
            nullable=True,
        ),
        Field(
            "max_retries",
            "integer",
            "retries after the first attempt (default: the task's)",
            minimum=0,
            maximum=100,
            nullable=True,
        ),
        Field(
            "idempotency_key",
            "string",
            "the same key and body return the first job; a different body is 409",
            min_length=1,
            max_length=200,
            nullable=True,
        ),
        Field(
            "delay_s",
            "number",
            "queue the job this many seconds from now (it waits as 'scheduled'); not with run_at",
            minimum=0,
            maximum=366 * 86_400,
            nullable=True,
        ),
        Field(
            "run_at",
            "string",
            "queue the job at this RFC 3339 time with an offset (e.g. 2030-01-01T09:00:00Z); "
            "up to 10 s in the past runs at once, further back is 422; not with delay_s",
            min_length=1,
            max_length=64,
            nullable=True,
        ),
    ],
)


def submit_batch(max_jobs: int) -> Body:
    """The body of a batch submit: at most ``max_jobs`` (``[http] max_batch_jobs``) jobs,
    each a :data:`SUBMIT_JOB` body (checked one by one: a bad item fails alone)."""
    return Body(
        name="SubmitJobBatch",
        description="Several jobs, committed together and answered one by one.",
        fields=[
            Field(
                "jobs",
                "array",
                "the jobs to submit, each a SubmitJob body",
                required=True,
                # Any value: each item is validated on its own (a SubmitJob body), and a bad
                # one is answered 422 in its place without failing the request.
                items={
                    "description": "a SubmitJob body (task, args, priority, timeout_s, "
                    "max_retries, idempotency_key, delay_s, run_at); an invalid one gets its own 422 answer",
                    "examples": [{"task": "echo", "args": {"x": 1}}],
                },
                min_items=1,
                max_items=max_jobs,
            )
        ],
    )


PUBLISH_MESSAGE = Body(
    name="PublishMessage",
    description="A message for every subscriber of the channel.",
    fields=[
        Field("data", "any", "any JSON value", required=True),
        Field(
            "priority",
            "string",
            "high bypasses batching",
            enum=("high", "normal"),
            default="normal",
        ),
    ],
)


# -- responses: what the server sends back, as /openapi.json publishes it --------------------
# Exact on purpose (every field listed and required, nothing else allowed): the tests validate
# every route's responses against the published document, so a field added to a response and
# not here fails them.

JOB_STATES = [
    "scheduled",
    "queued",
    "running",
    "retrying",
    "succeeded",
    "failed",
    "cancelled",
    "dead",
]
_TIME = {"type": "string", "format": "date-time"}
_MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}

JOB: dict[str, Any] = {
    "type": "object",
    "description": "A job as the journal holds it.",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "task": {"type": "string"},
        "args": {"type": "object"},
        "state": {"type": "string", "enum": JOB_STATES},
        "priority": {"type": "string", "enum": list(PRIORITIES)},
        "attempts": {"type": "integer", "minimum": 0},
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "progress_message": {"type": ["string", "null"]},
        "result": {"description": "the task's return value once succeeded (any JSON)"},
        "error": {"description": "why the last attempt failed (null when none)"},
        "created_at": _TIME,
        "started_at": _MAYBE_TIME,
        "finished_at": _MAYBE_TIME,
        "timeout_s": {"type": ["number", "null"]},
        "max_retries": {"type": "integer", "minimum": 0},
        "idempotency_key": {"type": ["string", "null"]},
        "cached": {"type": "boolean", "description": "the result came from the cache"},
        "tenant": {
            "type": "string",
            "description": "whose job it is: the tenant of the token that submitted it",
        },
        "run_at": {
            **_MAYBE_TIME,
            "description": "when a delayed job is (or was) due; null for a job queued at once",
        },
    },
}
JOB["required"] = list(JOB["properties"])

JOB_LIST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "jobs": {"type": "array", "items": JOB},
        "next_cursor": {"type": ["string", "null"]},
    },
    "required": ["jobs", "next_cursor"],
}

LOG_LINE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "seq": {"type": "integer", "minimum": 1},
        "ts": _TIME,
        "stream": {"type": "string"},
        "line": {"type": "string"},
    },
    "required": ["seq", "ts", "stream", "line"],
}
JOB_LOGS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"lines": {"type": "array", "items": LOG_LINE}},
    "required": ["lines"],
}

PUBLISHED: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"channel": {"type": "string"}, "offset": {"type": "integer", "minimum": 1}},
    "required": ["channel", "offset"],
}

STATUS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"status": {"type": "string"}},
    "required": ["status"],
}

PROBLEM: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document (extension members may follow).",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "field": {"type": "string", "description": "the one field at fault, when one is"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
    },
    "required": ["type", "title", "status", "detail", "code"],
}
