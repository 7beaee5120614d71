from __future__ import annotations

import base64
import json

import pytest

from flink_app import events
from tests.flink.builders import make_event


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def test_valid_event_parses_with_its_event_time(validator):
    result = events.parse_event(encode(make_event(7, seconds=1.5)), validator)
    assert isinstance(result, events.Transaction)
    assert result.transaction_id == "t-7"
    assert result.event_ts == pytest.approx(events.parse_event_time("2026-11-22T12:00:01.500Z"))
    assert result.payload["store_category"] == "grocery"


def _without(field: str) -> dict[str, object]:
    event = make_event()
    del event[field]
    return event


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", events.BAD_JSON),
        (b"", events.BAD_JSON),
        (b"[1, 2]", events.NOT_OBJECT),
        (b"\xff\xfe\x00garbage", events.NOT_UTF8),
        (b"\xc3\x28", events.NOT_UTF8),
        (encode(_without("transaction_id")), events.MISSING_FIELD),
        (encode(_without("amount")), events.MISSING_FIELD),
        (encode(make_event(amount="12.50")), events.WRONG_TYPE),
        (encode(make_event(customer_id=12345)), events.WRONG_TYPE),
        (encode(make_event(amount=-3.0)), events.OUT_OF_RANGE),
        (encode(make_event(amount=0)), events.OUT_OF_RANGE),
    ],
    ids=["bad-json", "empty", "array", "non-utf8", "truncated-utf8", "missing-id", "missing-amount",
         "amount-string", "customer-number", "negative-amount", "zero-amount"],
)
def test_every_malformed_kind_gets_its_reason(validator, raw, reason):
    result = events.parse_event(raw, validator)
    assert isinstance(result, events.Invalid)
    assert result.reason == reason, result.detail
    assert result.detail


def test_unparseable_event_time_is_rejected(validator):
    result = events.parse_event(encode(make_event(event_time="yesterday")), validator)
    assert isinstance(result, events.Invalid)
    assert result.reason in {events.BAD_EVENT_TIME, events.SCHEMA_VIOLATION}


def test_oversized_is_rejected_before_decoding(validator):
    big = encode(make_event(currency="x" * 200))
    result = events.parse_event(big, validator, max_bytes=len(big) - 1)
    assert isinstance(result, events.Invalid) and result.reason == events.OVERSIZED
    assert isinstance(events.parse_event(big, validator, max_bytes=len(big)), (events.Transaction, events.Invalid))


def test_tombstone_is_invalid_not_a_crash(validator):
    result = events.parse_event(None, validator)
    assert isinstance(result, events.Invalid) and result.reason == events.NULL_VALUE


def test_dlq_record_keeps_original_bytes_and_source():
    raw = b"\xff\x00 original"
    record = events.dlq_record(raw, events.Invalid(events.NOT_UTF8, "x"), topic="t", partition=2, offset=41)
    assert base64.b64decode(record["payload_base64"]) == raw
    assert (record["source_partition"], record["source_offset"], record["error_id"]) == (2, 41, "t-2-41")
    assert record["reason"] == events.NOT_UTF8 and record["payload_truncated"] is False
    json.dumps(record)  # serialisable as the DLQ message


def test_dlq_record_truncates_huge_payloads_but_identifies_them():
    raw = b"a" * 1000
    record = events.dlq_record(raw, events.Invalid(events.OVERSIZED, "x"), topic="t", partition=0, offset=1,
                               max_payload_bytes=100)
    assert len(base64.b64decode(record["payload_base64"])) == 100
    assert record["payload_truncated"] is True and record["payload_size"] == 1000
    assert len(record["payload_sha256"]) == 64


# --- sink limits (issue 17): values the contract lets through or cannot express, but a sink refuses ---

NOW = events.parse_event_time("2026-11-22T12:00:00.000Z")  # builders.BASE_TIME


def _with_token(field: str, token: str) -> bytes:
    """A valid event whose ``field`` is the raw JSON ``token`` (Python's json would never write it)."""
    marker = "__TOKEN__"
    return json.dumps(make_event(**{field: marker})).replace(f'"{marker}"', token).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_with_token("amount", "Infinity"), events.NON_FINITE_NUMBER),
        (_with_token("amount", "-Infinity"), events.NON_FINITE_NUMBER),
        (_with_token("amount", "NaN"), events.NON_FINITE_NUMBER),
        (_with_token("amount", "1e400"), events.NON_FINITE_NUMBER),
        (_with_token("lat", "-1E+309"), events.NON_FINITE_NUMBER),
        (_with_token("amount", "1" * 5000), events.NUMBER_TOO_LARGE),
        (_with_token("amount", "0." + "1" * 200), events.NUMBER_TOO_LARGE),
        (_with_token("amount", "1" * 40), events.OUT_OF_RANGE),
        (_with_token("amount", "1e12"), events.OUT_OF_RANGE),
        (_with_token("customer_id", '"a\\u0000b"'), events.NUL_CHARACTER),
        (_with_token("card_id", '"\\ud800"'), events.INVALID_UNICODE),
        (_with_token("store_id", '"x\\udfff"'), events.INVALID_UNICODE),
        (_with_token("transaction_id", json.dumps("t" * (events.MAX_ID_CHARS + 1))), events.ID_TOO_LONG),
        (_with_token("store_id", json.dumps("s" * 10_000)), events.ID_TOO_LONG),
        (_with_token("fraud_pattern", "[" * 5000 + "]" * 5000), events.TOO_DEEP),
        (b"[" * 60_000, events.TOO_DEEP),
        (_with_token("event_time", '"2026-11-23T12:00:00.000Z"'), events.FUTURE_EVENT_TIME),
        (_with_token("event_time", '"2026-02-30T12:00:00.000Z"'), events.BAD_EVENT_TIME),
    ],
    ids=["infinity", "minus-infinity", "nan", "overflow-1e400", "lat-overflow", "int-5000-digits",
         "fraction-200-digits", "amount-1e40", "amount-1e12", "nul-escape", "lone-high-surrogate",
         "lone-low-surrogate", "id-257-chars", "id-10k-chars", "deep-nesting", "only-brackets",
         "one-day-ahead", "february-30"],
)
def test_every_sink_limit_has_its_reason(validator, raw, reason):
    result = events.parse_event(raw, validator, now=NOW)
    assert isinstance(result, events.Invalid), result
    assert result.reason == reason, result.detail
    assert result.reason in events.REASONS and result.detail


def test_limits_accept_what_the_sinks_hold(validator):
    """The bounds are inclusive and do not reject ordinary unicode, escapes or surrogate pairs."""
    edge = make_event(transaction_id="t" * events.MAX_ID_CHARS, customer_id="Zoë \U0001f600 客户",
                      store_id="s\\u0041", amount=events.MAX_AMOUNT, lat=-90, lon=180)
    raw = json.dumps(edge).encode()  # ensure_ascii: the emoji travels as a \ud83d\ude00 pair
    assert b"\\ud83d\\ude00" in raw
    result = events.parse_event(raw, validator, now=NOW)
    assert isinstance(result, events.Transaction), result
    assert result.customer_id == "Zoë \U0001f600 客户"
    assert json.loads(result.payload_json()) == edge and result.payload_json().isascii()


def test_future_skew_is_configurable(validator):
    ahead = encode(make_event(seconds=250))
    assert isinstance(events.parse_event(ahead, validator, now=NOW), events.Transaction)
    late = events.parse_event(ahead, validator, now=NOW, max_future_skew_s=60)
    assert isinstance(late, events.Invalid) and late.reason == events.FUTURE_EVENT_TIME
    far = encode(make_event(seconds=10 * 365 * 86400))
    assert isinstance(events.parse_event(far, validator, now=NOW, max_future_skew_s=None), events.Transaction)


def test_event_time_is_normalised_utc(validator):
    result = events.parse_event(encode(make_event(seconds=1.5)), validator, now=NOW)
    assert isinstance(result, events.Transaction)
    assert result.event_time == "2026-11-22T12:00:01.500Z"
    moment = events.parse_event_datetime("2026-11-22T13:00:01.123456+01:00")
    assert events.format_event_time(moment) == "2026-11-22T12:00:01.123456Z"


def test_dlq_detail_is_plain_text_whatever_the_input():
    record = events.dlq_record(b"x", events.Invalid(events.INVALID_UNICODE, "bad \ud800 and \x00"),
                               topic="t", partition=0, offset=1)
    assert "\\ud800" in record["detail"] and "\\x00" in record["detail"]
    json.dumps(record, ensure_ascii=False).encode("utf-8")  # would raise on a lone surrogate
