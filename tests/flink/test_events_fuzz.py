"""Property-based fuzzing of parse_event (issue 17: no message can stop ingestion).

Property: for *any* Kafka record value, parse_event returns (never raises) either an Invalid with a
known reason code, or a Transaction every sink can hold (:func:`sink_violations` is empty). The same
strategies feed tests/integration/flink/test_bronze_row_fuzz.py, which inserts the bronze row into a
real PostgreSQL through the sink's inbox.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flink_app import events
from tests.flink.builders import make_event

NOW = events.parse_event_time("2026-11-22T12:00:00.000Z")  # builders.BASE_TIME
CANONICAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.(\d{3}|\d{6})Z$")
UNSAFE_CHAR = re.compile("[\x00\ud800-\udfff]")

# Raw JSON number literals, incl. the ones Python's json.dumps never writes.
NUMBER_TOKENS = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E+309", "1e-400", "-0", "-0.0", "0",
                     "1e308", "1.7976931348623157e308", "5e-324", "1" * 4301, "1" * 5000, "9" * 300,
                     "0." + "0" * 400 + "1", "1" + "0" * 20, "25.00", "1e9", "1000000000.01"]),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"-?(0|[1-9][0-9]{0,400})(\.[0-9]{1,400})?([eE][+-]?[0-9]{1,4})?", fullmatch=True),
)
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)  # incl. NUL and lone surrogates
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=20)
FIELDS = list(make_event())


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A valid event with one field (or one extra key) replaced by an odd value or raw JSON token."""
    event = make_event(draw(st.integers(0, 10**6)), seconds=draw(st.floats(-1e6, 1e6)))
    field = draw(st.sampled_from([*FIELDS, "extra"]))
    kind = draw(st.sampled_from(["value", "token", "string", "delete", "deep"]))
    if kind == "delete" and field in event:
        del event[field]
        return json.dumps(event).encode()
    if kind == "value":
        event[field] = draw(JSON_VALUES)
        return json.dumps(event).encode()  # floats may come out as NaN / Infinity here
    if kind == "string":
        event[field] = draw(TEXT)
        return json.dumps(event, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    marker = "\u2603__MARKER__"
    event[field] = marker
    text = json.dumps(event, ensure_ascii=False)
    if kind == "deep":
        depth = draw(st.integers(1, 3000))
        token = "[" * depth + "1" + "]" * depth
    else:
        token = draw(NUMBER_TOKENS)
    return text.replace(json.dumps(marker, ensure_ascii=False), token).encode("utf-8", "surrogatepass")


ARBITRARY_BYTES = st.binary(max_size=2000)
JSON_DOCUMENTS = JSON_VALUES.map(lambda v: json.dumps(v).encode())
MESSAGES = st.one_of(mutated_events(), ARBITRARY_BYTES, JSON_DOCUMENTS,
                     st.builds(lambda i: json.dumps(make_event(i)).encode(), st.integers(0, 10**9)))


def sink_violations(txn: events.Transaction) -> list[str]:
    """Why ``txn`` could not be written by the jobs' sinks (empty: every sink holds it)."""
    problems = []
    for name in events.ID_FIELDS:
        value = getattr(txn, name)
        if not isinstance(value, str) or not 0 < len(value) <= events.MAX_ID_CHARS:
            problems.append(f"{name} length")
    strings: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                collect(key)
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append("non-finite number in payload")

    collect(txn.payload)
    collect([txn.transaction_id, txn.customer_id, txn.card_id, txn.store_id, txn.event_time])
    if any(UNSAFE_CHAR.search(s) for s in strings):
        problems.append("NUL or lone surrogate in a string")
    if not (math.isfinite(txn.amount) and 0 < txn.amount <= events.MAX_AMOUNT):
        problems.append("amount out of range")
    if not CANONICAL_TIME.match(txn.event_time) or txn.event_ts > NOW + events.DEFAULT_MAX_FUTURE_SKEW_S:
        problems.append("event_time not canonical or too far ahead")
    try:
        payload = txn.payload_json()
        if not payload.isascii() or json.loads(payload) != txn.payload:
            problems.append("payload JSON does not round-trip as ASCII")
    except ValueError as error:
        problems.append(f"payload not serialisable: {error}")
    return problems


def check(raw: bytes, validator: events.EventValidator) -> events.Transaction | events.Invalid:
    result = events.parse_event(raw, validator, now=NOW)  # must not raise
    if isinstance(result, events.Invalid):
        assert result.reason in events.REASONS and result.reason != events.INTERNAL_ERROR, result
        json.dumps(events.dlq_record(raw, result, topic="t", partition=0, offset=0), ensure_ascii=False).encode()
    else:
        assert isinstance(result, events.Transaction)
        assert sink_violations(result) == [], (raw[:200], sink_violations(result))
    return result


FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(raw=MESSAGES)
def test_any_message_is_a_sink_safe_transaction_or_a_reasoned_dlq_record(validator, raw):
    check(raw, validator)


@FUZZ
@given(raw=mutated_events())
def test_mutated_events_never_crash_and_never_leak_unsafe_values(validator, raw):
    check(raw, validator)


@settings(max_examples=200, deadline=None)
@given(depth=st.integers(1, 40_000), opener=st.sampled_from(["[", '{"a":']))
def test_deep_nesting_is_a_reason_not_a_recursion_error(validator, depth, opener):
    closer = "]" if opener == "[" else "}"
    raw = (opener * depth + "1" + closer * depth).encode()
    result = check(raw, validator)
    assert isinstance(result, events.Invalid)
    if depth > events.MAX_NESTING and len(raw) <= events.DEFAULT_MAX_EVENT_BYTES:
        assert result.reason == events.TOO_DEEP


def test_the_fuzzer_reaches_both_outcomes(validator):
    """Guard against a vacuous property: the strategies produce valid events and many reasons."""
    seen: set[str] = set()
    valid = 0

    @settings(max_examples=400, deadline=None, database=None)
    @given(raw=mutated_events())
    def collect(raw: bytes) -> None:
        nonlocal valid
        result = events.parse_event(raw, validator, now=NOW)
        if isinstance(result, events.Transaction):
            valid += 1
        else:
            seen.add(result.reason)

    collect()
    assert valid > 0
    assert {events.NON_FINITE_NUMBER, events.WRONG_TYPE, events.MISSING_FIELD} <= seen, seen


@settings(max_examples=500, deadline=None)
@given(raw=st.one_of(st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z"),
                     st.datetimes(timezones=st.just(events.UTC)).map(events.format_event_time),
                     st.text(max_size=30)))
def test_event_time_shortcut_equals_the_formatted_time(raw):
    """parse_event keeps a raw event_time of canonical shape as is: it must equal the formatted one."""
    try:
        moment = events.parse_event_datetime(raw)
    except (ValueError, TypeError, OverflowError):
        return
    assert events._canonical_time(raw, moment) == events.format_event_time(moment)
