"""The compiled fast check must accept and reject exactly what jsonschema does on the real schema."""

from __future__ import annotations

import copy
import itertools

from jsonschema import Draft202012Validator

from flink_app.schema_check import compile_schema
from tests.flink.builders import make_event

ODD_VALUES: list[object] = [
    None, True, False, 0, 1, -1, 1.0, 2, 0.001, -0.5, 1e308, "", "x", "12.5", [], {}, "pos", "grocery",
    "EUR", "eur", "EURO", "high_value", "2026-11-22T07:00:00Z", "2026-11-22T07:00:00.123Z",
    91.0, -181.0, 90, 180,
]


def test_fast_check_agrees_with_jsonschema_on_mutated_events(validator):
    schema = validator.schema
    fast = compile_schema(schema)
    if fast is None:  # the schema uses keywords outside the subset: jsonschema validates every event
        assert validator.fast is None
        return
    full = Draft202012Validator(schema)
    base = make_event()
    cases = [base, {}, {"extra": 1} | base]
    for field, value in itertools.product([*list(base), "unknown_field"], ODD_VALUES):
        event = copy.deepcopy(base)
        event[field] = value
        cases.append(event)
    for field in base:
        event = copy.deepcopy(base)
        del event[field]
        cases.append(event)
    disagreements = [c for c in cases if fast(c) != full.is_valid(c)]
    assert disagreements == []
    assert sum(1 for c in cases if not full.is_valid(c)) > len(base)  # the mutations do exercise rejections


def test_unsupported_keywords_fall_back_to_jsonschema():
    assert compile_schema({"type": "object", "oneOf": [{"required": ["a"]}]}) is None
    assert compile_schema({"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}}) is None
    assert compile_schema({"type": "object", "properties": {"a": {"type": "string"}}}) is not None


def test_the_generators_schema_is_compiled(validator):
    """The real contract stays on the fast path (else every event pays jsonschema's full cost)."""
    assert validator.fast is not None


def test_fraud_label_consistency_is_enforced(validator):
    fast = validator.fast
    assert fast(make_event(is_fraud_truth=True, fraud_pattern="high_value"))
    assert not fast(make_event(is_fraud_truth=True, fraud_pattern=None))
    assert not fast(make_event(is_fraud_truth=False, fraud_pattern="high_value"))
