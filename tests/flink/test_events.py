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
