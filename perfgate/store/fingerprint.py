"""Canonical JSON and the body fingerprint used for idempotency and cache keys.

Pure: no I/O, no clock. Two bodies that mean the same thing as JSON (same keys and values,
whatever the key order or whitespace) have the same canonical text and so the same
fingerprint. Numbers keep their JSON spelling: ``1`` and ``1.0`` are different bodies, as they
are to a task that calls ``type()`` on its argument.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from perfgate.errors import ValidationError

#: The submit-body fields that decide what a job *does* (and when: ``delay_s``, ``run_at``).
#: ``idempotency_key`` is left out: it names the request, it is not part of it. Absent fields
#: and ``null`` fields are the same, so a field added later leaves the fingerprints of bodies
#: that do not use it unchanged (a key stays valid across an upgrade).
FINGERPRINT_FIELDS = ("task", "args", "priority", "timeout_s", "max_retries", "delay_s", "run_at")


def canonical_json(value: Any) -> bytes:
    """``value`` as compact, sorted-keys UTF-8 JSON.

    Raises :class:`~perfgate.errors.ValidationError` for anything JSON cannot carry
    faithfully: NaN or infinities, lone surrogates, or non-JSON types (bytes, sets, objects). Non-string
    keys are not expected (a parsed JSON body has none); ``json`` turns them into strings.
    """
    try:
        text = json.dumps(
            value,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
        # A lone surrogate ("\ud800") passes json.dumps but not UTF-8 (issue 19.7: a 500).
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise ValidationError(f"not representable as JSON: {exc}") from None


def digest(value: Any) -> str:
    """sha256 (hex) of ``value``'s canonical JSON."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def body_fingerprint(body: Mapping[str, Any]) -> str:
    """The fingerprint of a submit body: same key + same fingerprint means the same request.

    Only :data:`FINGERPRINT_FIELDS` count; a field given as ``null`` counts as absent, so a
    client that spells out a default and one that omits it are treated alike only when both
    omit it or both send ``null`` (a spelled-out default value is a different body, because
    the server's defaults may change between the two requests).
    """
    relevant = {name: body[name] for name in FINGERPRINT_FIELDS if body.get(name) is not None}
    return digest(relevant)
