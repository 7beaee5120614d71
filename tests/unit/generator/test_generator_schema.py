"""The event contract: every valid event validates, malformed ones fail for their stated reason."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from generator_samples import Sample

from generator import SCHEMA_PATH
from generator.malformed import MISSING_FIELD_CHOICES
from generator.model import CATEGORIES, CHANNELS
from generator.pattern_rules import FRAUD_PATTERNS
from generator.stream import MALFORMED_KINDS

SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
CONTRACT_FIELDS = {
    "schema_version", "transaction_id", "customer_id", "card_id", "store_id", "store_category", "amount",
    "currency", "channel", "event_time", "lat", "lon", "is_fraud_truth", "fraud_pattern",
}


def test_schema_is_valid_draft_2020_12_and_closed() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["additionalProperties"] is False
    assert set(SCHEMA["required"]) == CONTRACT_FIELDS == set(SCHEMA["properties"])
    assert SCHEMA["properties"]["amount"]["exclusiveMinimum"] == 0


def test_schema_enums_are_the_code_lists() -> None:
    props = SCHEMA["properties"]
    assert tuple(props["store_category"]["enum"]) == CATEGORIES
    assert tuple(props["channel"]["enum"]) == CHANNELS
    assert tuple(props["fraud_pattern"]["enum"]) == (None, *FRAUD_PATTERNS)


def test_every_valid_event_validates(fraud_sample: Sample) -> None:
    events = fraud_sample.valid_events
    assert len(events) == len(fraud_sample.values)
    errors = [(e["transaction_id"], err.message) for e in events[::3] for err in VALIDATOR.iter_errors(e)]
    assert errors == []


def test_event_format_details(fraud_sample: Sample) -> None:
    for value, key in zip(fraud_sample.values[:2000], fraud_sample.keys[:2000], strict=True):
        event = json.loads(value)
        assert list(event) == [
            "schema_version", "transaction_id", "customer_id", "card_id", "store_id", "store_category", "amount",
            "currency", "channel", "event_time", "lat", "lon", "is_fraud_truth", "fraud_pattern"]
        assert key == event["customer_id"].encode()
        assert re.fullmatch(r"C\d{6}", event["customer_id"]) and re.fullmatch(r"S\d{4}", event["store_id"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["event_time"])
        assert re.search(r'"amount":\d+\.\d\d,', value), "amount must have exactly two decimals"
        assert event["is_fraud_truth"] == (event["fraud_pattern"] is not None)


def test_labels_must_agree() -> None:
    event = {"schema_version": 1, "transaction_id": "t-1-1", "customer_id": "C000001", "card_id": "K000001",
             "store_id": "S0001", "store_category": "grocery", "amount": 1.5, "currency": "EUR", "channel": "pos",
             "event_time": "2026-11-22T07:00:00.123Z", "lat": 1.0, "lon": 2.0, "is_fraud_truth": False,
             "fraud_pattern": None}
    assert VALIDATOR.is_valid(event)
    assert not VALIDATOR.is_valid({**event, "fraud_pattern": "high_value"})
    assert not VALIDATOR.is_valid({**event, "is_fraud_truth": True})
    assert not VALIDATOR.is_valid({**event, "extra": 1})


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_malformed_events_fail_for_their_stated_reason(malformed_sample: Sample, kind: str) -> None:
    code = MALFORMED_KINDS.index(kind) + 1
    values = [v for v, m in zip(malformed_sample.values, malformed_sample.batch.malformed.tolist(), strict=True)
              if m == code]
    assert len(values) >= 50
    for value in values:
        if kind == "bad_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(value)
            continue
        event = json.loads(value)
        reasons = {(e.validator, tuple(e.absolute_path)) for e in VALIDATOR.iter_errors(event)}
        if kind == "missing_field":
            missing = [f for f in MISSING_FIELD_CHOICES if f not in event]
            assert len(missing) == 1 and reasons == {("required", ())}
        elif kind == "wrong_type":
            assert event["amount"] == "abc" and reasons == {("type", ("amount",))}
        else:
            assert event["amount"] < 0 and reasons == {("exclusiveMinimum", ("amount",))}


def test_malformed_share_is_close_to_the_rate(malformed_sample: Sample) -> None:
    share = float((malformed_sample.batch.malformed > 0).mean())
    assert share == pytest.approx(0.1, rel=0.1)
    assert not ((malformed_sample.batch.malformed > 0) & (malformed_sample.batch.pattern > 0)).any()


def test_every_message_kind_keeps_its_sequence_for_the_ledger(malformed_sample: Sample) -> None:
    """The Kafka sink matches delivery reports to ledger rows through the id inside the value."""
    from generator.producer import sequence_of

    for position, value in enumerate(malformed_sample.values, start=1):
        assert sequence_of(value.encode()) == position
