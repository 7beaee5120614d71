"""The generated fast check must accept and reject exactly what jsonschema does: on the real schema (mutated
events) and on any schema of the supported subset (random schemas and documents, hypothesis)."""

from __future__ import annotations

import copy
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from flink_app.schema_check import compile_schema, generate_source
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


# ---- the class: any schema of the subset, any JSON document -------------------------------------------
NAMES = ["a", "b", "c", "is_x"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 0.5, 1.0, -1.5, 2.0, 1e308]),
                    st.sampled_from(["", "a", "ab", "EUR", "eur", "2026-01-01", "x1"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(NAMES), inner, max_size=3), max_leaves=6)
TYPE_NAMES = st.sampled_from(["string", "number", "integer", "boolean", "null", "object", "array"])
PATTERNS = st.sampled_from(["^[A-Z]{3}$", "[0-9]", "^a", "b$", "^$"])


@st.composite
def field_schemas(draw: st.DrawFn) -> dict[str, object]:
    schema: dict[str, object] = {}
    if draw(st.booleans()):
        schema["type"] = draw(TYPE_NAMES | st.lists(TYPE_NAMES, min_size=1, max_size=3, unique=True))
    if draw(st.integers(0, 3)) == 0:
        schema["enum"] = draw(st.lists(SCALARS, min_size=1, max_size=4))
    if draw(st.integers(0, 4)) == 0:
        schema["const"] = draw(SCALARS)
    for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if draw(st.integers(0, 3)) == 0:
            schema[keyword] = draw(st.integers(-2, 2) | st.sampled_from([0.5, -0.5, 1.5]))
    for keyword in ("minLength", "maxLength"):
        if draw(st.integers(0, 3)) == 0:
            schema[keyword] = draw(st.integers(0, 3))
    if draw(st.integers(0, 3)) == 0:
        schema["pattern"] = draw(PATTERNS)
    return schema


@st.composite
def object_schemas(draw: st.DrawFn, depth: int = 1) -> dict[str, object]:
    schema: dict[str, object] = {}
    if draw(st.booleans()):
        schema["type"] = "object"
    properties = draw(st.dictionaries(st.sampled_from(NAMES), field_schemas(), max_size=4))
    if properties or draw(st.booleans()):
        schema["properties"] = properties
    if draw(st.booleans()):
        schema["required"] = draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True))
    if draw(st.booleans()):
        schema["additionalProperties"] = draw(st.booleans())
    if depth > 0 and draw(st.integers(0, 2)) == 0:
        for keyword in ("if", "then", "else"):
            if keyword == "if" or draw(st.booleans()):
                schema[keyword] = draw(object_schemas(depth=0))
    return schema


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(schema=object_schemas(), documents=st.lists(st.dictionaries(st.sampled_from(NAMES), JSON, max_size=4)
                                                   | JSON, min_size=1, max_size=12))
def test_any_schema_of_the_subset_accepts_exactly_what_jsonschema_accepts(schema, documents) -> None:
    Draft202012Validator.check_schema(schema)
    fast = compile_schema(schema)
    assert fast is not None, generate_source(schema)
    full = Draft202012Validator(schema)
    for document in documents:
        assert fast(document) == full.is_valid(document), (schema, document, generate_source(schema)[0])


def test_enum_and_const_of_containers_are_left_to_jsonschema() -> None:
    # Python's [True] == [1]; JSON's is not: such schemas are validated by jsonschema alone
    assert compile_schema({"properties": {"a": {"enum": [[1]]}}}) is None
    assert compile_schema({"properties": {"a": {"const": {"k": 1}}}}) is None
