"""Parsing and validation of ``transactions.raw`` events, and the DLQ record for the ones that fail.

Validation is against the generator's own JSON Schema file (``generator/schema/
transaction.v1.schema.json``; path from ``STREAMFLOW_EVENT_SCHEMA``), never a copy, so the contract
has one owner. Every failure becomes an :class:`Invalid` with a stable reason code; nothing raises,
so the job can route it to ``dlq.errors`` instead of crashing or dropping it.

On top of the contract, :func:`parse_event` enforces the *sink limits*: what PostgreSQL (jsonb, text,
timestamptz, the primary-key btree), the Python->Java string hand-off and the downstream numeric
columns can hold. A message that passed the schema but broke a sink used to fail the JDBC batch and
put the job in a restart loop (issue 17: ``"amount": Infinity``). So JSON is parsed strictly (no
NaN/Infinity, no number that overflows to inf, no number token longer than ``MAX_NUMBER_CHARS``),
nesting is bounded before parsing, every string is free of NUL and lone surrogates, ids are at most
``MAX_ID_CHARS`` characters, the amount fits the numeric columns and the event time is not in the
future by more than the allowed clock skew. The checks are straight-line and cost ~1 microsecond for
an ordinary event (docs/adr/0009-no-message-stops-ingestion.md has the numbers).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import time
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
# Sink limits (issue 17): values the contract allows or cannot express but a sink cannot hold.
NON_FINITE_NUMBER = "non_finite_number"  # NaN, Infinity, -Infinity, or a literal that overflows to inf
NUMBER_TOO_LARGE = "number_too_large"  # a number literal longer than MAX_NUMBER_CHARS
TOO_DEEP = "too_deep"  # arrays/objects nested deeper than MAX_NESTING
NUL_CHARACTER = "nul_character"  # U+0000 in any key or string (PostgreSQL text/jsonb refuse it)
INVALID_UNICODE = "invalid_unicode"  # a lone UTF-16 surrogate from a \ud800-style escape
ID_TOO_LONG = "id_too_long"  # an id longer than MAX_ID_CHARS (primary-key btree limit)
FUTURE_EVENT_TIME = "future_event_time"  # event time beyond now + the allowed clock skew
INTERNAL_ERROR = "internal_error"  # a bug in the job's own code; the message is kept in the DLQ

REASONS = (NULL_VALUE, OVERSIZED, NOT_UTF8, BAD_JSON, NOT_OBJECT, MISSING_FIELD, WRONG_TYPE, OUT_OF_RANGE,
           SCHEMA_VIOLATION, BAD_EVENT_TIME, NON_FINITE_NUMBER, NUMBER_TOO_LARGE, TOO_DEEP, NUL_CHARACTER,
           INVALID_UNICODE, ID_TOO_LONG, FUTURE_EVENT_TIME, INTERNAL_ERROR)

# Every id is a PostgreSQL primary key (transaction_id, alert_id) or a key of a dbt model. A btree entry
# holds at most 2704 bytes; 256 characters are at most 1024 UTF-8 bytes, far below it, and 10x the
# longest id the generator makes.
MAX_ID_CHARS = 256
ID_FIELDS = ("transaction_id", "customer_id", "card_id", "store_id")
# The realtime aggregator sums amounts per store and minute into numeric(18, 2) (< 10^16): with each
# amount <= 10^9 a window needs 10^7 events of one store in one minute to overflow, 20x what the
# pipeline can process. dbt flags amounts above its own business limit (max_valid_amount) in silver.
MAX_AMOUNT = 1e9
# Fractional number literals longer than this are refused before conversion (PostgreSQL's numeric keeps
# at most 16383 fractional digits; no real amount or coordinate needs more than a few dozen).
MAX_NUMBER_CHARS = 100
# Bounded before parsing: the C JSON scanner recurses per level, and a Python worker in thread mode runs
# on a JVM thread's stack. The contract is flat (depth 1).
MAX_NESTING = 32
DEFAULT_MAX_FUTURE_SKEW_S = 300.0


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
    event_time: str  # normalised UTC ISO-8601 ('2026-11-22T07:00:00.123Z'), parsed from the payload's
    event_ts: float  # epoch seconds, from event_time
    lat: float
    lon: float
    payload: dict[str, Any]

    def payload_json(self) -> str:
        """The payload as strict JSON for bronze's jsonb: no NaN/Infinity (``allow_nan=False`` raises
        instead), and pure ASCII (non-ASCII as \\u escapes), so the string crosses to Java and JDBC
        unchanged whatever it holds."""
        return json.dumps(self.payload, separators=(",", ":"), allow_nan=False)


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


def parse_event_datetime(value: str) -> datetime:
    """ISO-8601 ('2026-11-22T07:00:00.123Z'; no offset = UTC) to an aware UTC datetime; ValueError if not."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_event_time(value: str) -> float:
    """ISO-8601 UTC ('2026-11-22T07:00:00.123Z') to epoch seconds; ValueError if not parseable."""
    return parse_event_datetime(value).timestamp()


def format_event_time(moment: datetime) -> str:
    """The canonical UTC form bronze stores: milliseconds unless the time has finer precision."""
    spec = "milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _canonical_time(raw: str, moment: datetime) -> str:
    """``raw`` when it already is the canonical form (the contract's pattern: saves ~1 us), else formatted.

    A 24-character ASCII 'YYYY-MM-DDTHH:MM:SS.mmmZ' that parsed is exactly what format_event_time
    writes for it (a property test checks this).
    """
    if len(raw) == 24 and raw[10] == "T" and raw[19] == "." and raw[23] == "Z" and raw.isascii():
        return raw
    return format_event_time(moment)


class _Refused(ValueError):
    """Raised by the strict JSON hooks; carries the DLQ reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _refuse_constant(name: str) -> Any:
    raise _Refused(NON_FINITE_NUMBER, f"{name} is not a JSON number (PostgreSQL and strict JSON refuse it)")


def _strict_float(token: str) -> float:
    if len(token) > MAX_NUMBER_CHARS:
        raise _Refused(NUMBER_TOO_LARGE, f"number literal of {len(token)} characters > {MAX_NUMBER_CHARS}")
    value = float(token)
    if math.isinf(value):
        raise _Refused(NON_FINITE_NUMBER, f"{token[:40]} overflows a double to infinity")
    return value


# Integers keep the C fast path: Python refuses literals over 4300 digits itself (a bounded cost), and
# that ValueError is mapped to NUMBER_TOO_LARGE in _decode.
_DECODER = json.JSONDecoder(parse_float=_strict_float, parse_constant=_refuse_constant)
_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_UNSAFE_CHAR = re.compile("[\x00\ud800-\udfff]")


def _nesting(text: str) -> int:
    """Deepest array/object nesting of a JSON text, brackets inside strings ignored (the rare slow path)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING_LITERAL.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _unsafe_string(value: Any, depth: int = 0) -> str | None:
    """The first key or string holding NUL or a lone surrogate (depth is bounded by MAX_NESTING)."""
    if isinstance(value, str):
        return value if _UNSAFE_CHAR.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unsafe_string(key, depth + 1) or _unsafe_string(item, depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _unsafe_string(item, depth + 1)
            if found is not None:
                return found
    return None


def _decode(text: str) -> Any:
    """Strict JSON: raises _Refused (sink limits) or ValueError (not JSON)."""
    if text.count("[") + text.count("{") > MAX_NESTING and _nesting(text) > MAX_NESTING:
        raise _Refused(TOO_DEEP, f"arrays/objects nested deeper than {MAX_NESTING} levels")
    try:
        document = _DECODER.decode(text)
    except RecursionError as error:  # unreachable after the nesting bound; kept so it cannot crash
        raise _Refused(TOO_DEEP, "nesting exceeds the interpreter's recursion limit") from error
    except ValueError as error:
        if "integer string conversion" in str(error):  # CPython's int_max_str_digits guard
            raise _Refused(NUMBER_TOO_LARGE, str(error)) from error
        raise
    # Without a \u escape a string can hold neither NUL (the strict decoder refuses raw control
    # characters) nor a lone surrogate (the UTF-8 decoder refuses encoded ones): skip the walk.
    if "\\u" in text:
        unsafe = _unsafe_string(document)
        if unsafe is not None:
            if "\x00" in unsafe:
                raise _Refused(NUL_CHARACTER, f"a string holds U+0000: {unsafe[:60]!r}")
            raise _Refused(INVALID_UNICODE, f"a string holds a lone UTF-16 surrogate: {unsafe[:60]!r}")
    return document


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
    *,
    max_future_skew_s: float | None = DEFAULT_MAX_FUTURE_SKEW_S,
    now: float | None = None,
) -> Transaction | Invalid:
    """Decode and validate one Kafka record value; never raises.

    A :class:`Transaction` is guaranteed to fit every sink (see the module docstring); ``now`` (epoch
    seconds, default the wall clock) and ``max_future_skew_s`` (None: no bound) decide how far in the
    future its event time may be.
    """
    if raw is None:
        return Invalid(NULL_VALUE, "record has no value (tombstone)")
    if len(raw) > max_bytes:
        return Invalid(OVERSIZED, f"{len(raw)} bytes > limit {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return Invalid(NOT_UTF8, f"invalid UTF-8 at byte {error.start}")
    try:
        document = _decode(text)
    except _Refused as refused:
        return Invalid(refused.reason, str(refused)[:500])
    except ValueError as error:
        return Invalid(BAD_JSON, str(error)[:500])
    if not isinstance(document, dict):
        return Invalid(NOT_OBJECT, f"top-level JSON is {type(document).__name__}, not an object")
    validator = validator or load_validator()
    if not validator.is_valid(document):
        errors = sorted(validator.iter_errors(document), key=lambda e: (len(e.absolute_path), str(e.validator)))
        if errors:  # none only if the fast check were stricter than the schema: jsonschema decides
            return Invalid(_reason_for(errors[0]), _describe(errors[0]))
    for field in ID_FIELDS:
        value = document.get(field)
        if not isinstance(value, str) or not value:
            return Invalid(MISSING_FIELD if value is None else WRONG_TYPE, f"{field}: {value!r:.80} is not an id")
        if len(value) > MAX_ID_CHARS:
            return Invalid(ID_TOO_LONG, f"{field}: {len(value)} characters > {MAX_ID_CHARS}")
    try:
        moment = parse_event_datetime(document["event_time"])
        event_ts = moment.timestamp()
    except (ValueError, TypeError, KeyError, OverflowError, AttributeError) as error:
        return Invalid(BAD_EVENT_TIME, f"event_time {document.get('event_time')!r:.80}: {error}"[:500])
    if max_future_skew_s is not None:
        ahead = event_ts - (time.time() if now is None else now)
        if ahead > max_future_skew_s:
            return Invalid(FUTURE_EVENT_TIME, f"event_time {format_event_time(moment)} is {ahead:.0f} s ahead "
                                              f"(limit {max_future_skew_s:g} s)")
    amount = document.get("amount")
    if not isinstance(amount, int | float) or isinstance(amount, bool) or not 0 < amount <= MAX_AMOUNT:
        return Invalid(OUT_OF_RANGE, f"amount: {amount!r:.80} is not a number in (0, {MAX_AMOUNT:g}]")
    return Transaction(
        transaction_id=document["transaction_id"],
        customer_id=document["customer_id"],
        card_id=document["card_id"],
        store_id=document["store_id"],
        store_category=str(document.get("store_category", "")),
        amount=float(amount),
        channel=str(document.get("channel", "")),
        event_time=_canonical_time(document["event_time"], moment),
        event_ts=event_ts,
        lat=float(document.get("lat") or 0.0),
        lon=float(document.get("lon") or 0.0),
        payload=document,
    )


def bronze_row(txn: Transaction, topic: str, partition: int, offset: int,
               ingested_at: str) -> tuple[str, str, str, int, int, str, str]:
    """The bronze.raw_transactions row (sql.BRONZE_TRANSACTIONS_COLUMNS order) the processor writes.

    Canonical values only: the payload as strict ASCII JSON, event_time as the normalised UTC time
    parse_event read (never the raw string), so PostgreSQL's jsonb/timestamptz casts cannot refuse it.
    """
    return (txn.transaction_id, txn.payload_json(), topic, partition, offset, txn.event_time, ingested_at)


def _plain_text(text: str) -> str:
    """``text`` without NUL or lone surrogates (escaped instead), so any strict JSON reader takes it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


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
        "detail": _plain_text(invalid.detail),
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "payload_base64": base64.b64encode(kept).decode("ascii"),
        "payload_size": len(data),
        "payload_truncated": len(kept) < len(data),
        "payload_sha256": hashlib.sha256(data).hexdigest(),
        "detected_at": detected_at or datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
