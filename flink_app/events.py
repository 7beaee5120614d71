"""Parsing and validation of ``transactions.raw`` events, and the DLQ record for the ones that fail.

Validation is against the generator's own JSON Schema file (``generator/schema/
transaction.v1.schema.json``; path from ``STREAMFLOW_EVENT_SCHEMA``), never a copy, so the contract
has one owner. Every failure becomes an :class:`Invalid` with a stable reason code; nothing raises,
so the job can route it to ``dlq.errors`` instead of crashing or dropping it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from flink_app.schema_check import compile_schema

DEFAULT_SCHEMA = Path(__file__).resolve().parent.parent / "generator" / "schema" / "transaction.v1.schema.json"
DEFAULT_MAX_EVENT_BYTES = 65_536

# Stable reason codes (DLQ consumers and tests rely on them).
NULL_VALUE = "null_value"
OVERSIZED = "oversized"
NOT_UTF8 = "not_utf8"
BAD_JSON = "bad_json"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "out_of_range"
SCHEMA_VIOLATION = "schema_violation"
BAD_EVENT_TIME = "bad_event_time"


@dataclass(frozen=True)
class Transaction:
    """A valid event; ``payload`` is the decoded JSON object exactly as produced."""

    transaction_id: str
    customer_id: str
    card_id: str
    store_id: str
    store_category: str
    amount: float
    channel: str
    event_time: str
    event_ts: float  # epoch seconds, from event_time
    lat: float
    lon: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class Invalid:
    reason: str
    detail: str


def schema_path() -> Path:
    return Path(os.environ.get("STREAMFLOW_EVENT_SCHEMA") or DEFAULT_SCHEMA)


class EventValidator:
    """jsonschema's validator for the generator's schema, with the fast exact check in front of it."""

    def __init__(self, schema: dict[str, Any]) -> None:
        Draft202012Validator.check_schema(schema)
        self.schema = schema
        self.full = Draft202012Validator(schema)
        self.fast = compile_schema(schema)

    def is_valid(self, document: Any) -> bool:
        return self.fast(document) if self.fast is not None else bool(self.full.is_valid(document))

    def iter_errors(self, document: Any) -> Any:
        return self.full.iter_errors(document)


@lru_cache(maxsize=4)
def load_validator(path: str | None = None) -> EventValidator:
    """The validator for the generator's schema (cached: compiled once per worker)."""
    file = Path(path) if path else schema_path()
    try:
        schema = json.loads(file.read_text())
    except OSError as error:
        raise RuntimeError(
            f"event schema not found at {file}: set STREAMFLOW_EVENT_SCHEMA to the generator's "
            "transaction.v1.schema.json (the Flink image must ship generator/schema)"
        ) from error
    return EventValidator(schema)


def parse_event_time(value: str) -> float:
    """ISO-8601 UTC ('2026-11-22T07:00:00.123Z') to epoch seconds; ValueError if not parseable."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _reason_for(error: ValidationError) -> str:
    if error.validator == "required":
        return MISSING_FIELD
    if error.validator == "type":
        return WRONG_TYPE
    if error.validator in {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}:
        return OUT_OF_RANGE
    return SCHEMA_VIOLATION


def _describe(error: ValidationError) -> str:
    location = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{location}: {error.message}"[:500]


def parse_event(
    raw: bytes | None,
    validator: EventValidator | None = None,
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> Transaction | Invalid:
    """Decode and validate one Kafka record value; never raises."""
    if raw is None:
        return Invalid(NULL_VALUE, "record has no value (tombstone)")
    if len(raw) > max_bytes:
        return Invalid(OVERSIZED, f"{len(raw)} bytes > limit {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return Invalid(NOT_UTF8, f"invalid UTF-8 at byte {error.start}")
    try:
        document = json.loads(text)
    except ValueError as error:
        return Invalid(BAD_JSON, str(error)[:500])
    if not isinstance(document, dict):
        return Invalid(NOT_OBJECT, f"top-level JSON is {type(document).__name__}, not an object")
    validator = validator or load_validator()
    if not validator.is_valid(document):
        errors = sorted(validator.iter_errors(document), key=lambda e: (len(e.absolute_path), str(e.validator)))
        if errors:  # none only if the fast check were stricter than the schema: jsonschema decides
            return Invalid(_reason_for(errors[0]), _describe(errors[0]))
    try:
        event_ts = parse_event_time(document["event_time"])
    except (ValueError, TypeError, KeyError) as error:
        return Invalid(BAD_EVENT_TIME, f"event_time {document.get('event_time')!r}: {error}"[:500])
    amount = document.get("amount")
    if not isinstance(amount, int | float) or isinstance(amount, bool) or amount <= 0:
        return Invalid(OUT_OF_RANGE, f"amount: {amount!r} is not a positive number")
    return Transaction(
        transaction_id=str(document["transaction_id"]),
        customer_id=str(document["customer_id"]),
        card_id=str(document.get("card_id", "")),
        store_id=str(document.get("store_id", "")),
        store_category=str(document.get("store_category", "")),
        amount=float(amount),
        channel=str(document.get("channel", "")),
        event_time=str(document["event_time"]),
        event_ts=event_ts,
        lat=float(document.get("lat") or 0.0),
        lon=float(document.get("lon") or 0.0),
        payload=document,
    )


def dlq_record(
    raw: bytes | None,
    invalid: Invalid,
    *,
    topic: str,
    partition: int,
    offset: int,
    detected_at: str | None = None,
    max_payload_bytes: int = 262_144,
) -> dict[str, Any]:
    """The ``dlq.errors`` message: original bytes (base64), reason, and where they came from.

    Bytes beyond ``max_payload_bytes`` are cut (``payload_truncated``) so the DLQ message itself stays
    under Kafka's 1 MiB default; ``payload_sha256`` and ``payload_size`` still identify the original,
    which Kafka keeps at ``source_topic/partition/offset``.
    """
    data = raw or b""
    kept = data[:max_payload_bytes]
    return {
        "error_id": f"{topic}-{partition}-{offset}",
        "reason": invalid.reason,
        "detail": invalid.detail,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "payload_base64": base64.b64encode(kept).decode("ascii"),
        "payload_size": len(data),
        "payload_truncated": len(kept) < len(data),
        "payload_sha256": hashlib.sha256(data).hexdigest(),
        "detected_at": detected_at or datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
