"""A fast, exact checker for the simple JSON Schemas our event contract uses.

Why: ``jsonschema``'s validator costs ~300 microseconds per event here, more than everything else
the transaction processor does per record. The generator's schema is a flat object of typed,
bounded fields; for that subset of JSON Schema this module compiles plain Python checks from the
same file. If the schema uses any keyword outside the subset, :func:`compile_schema` returns None
and the caller uses ``jsonschema`` for every event. ``jsonschema`` still produces the error reason
for events this check rejects, and a unit test cross-checks both on many mutated events.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

_ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description", "examples", "default", "format",
                "deprecated", "readOnly", "writeOnly", "$defs", "definitions"}
_FIELD_KEYWORDS = {"type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                   "minLength", "maxLength", "pattern"}
_OBJECT_KEYWORDS = {"type", "required", "properties", "additionalProperties"}
_CONDITIONAL = {"if", "then", "else"}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "number": _is_number,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _bounded(compare: Callable[[Any, Any], bool], bound: Any) -> Check:
    return lambda v: not _is_number(v) or compare(v, bound)


def _field_check(schema: dict[str, Any]) -> Check | None:
    if not isinstance(schema, dict) or set(schema) - _FIELD_KEYWORDS - _ANNOTATIONS:
        return None
    checks: list[Check] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if any(n not in _TYPES for n in names):
            return None
        type_checks = [_TYPES[n] for n in names]
        checks.append(lambda v: any(c(v) for c in type_checks))
    if "enum" in schema:
        options = list(schema["enum"])
        checks.append(lambda v: any(_equal(v, o) for o in options))
    if "const" in schema:
        constant = schema["const"]
        checks.append(lambda v: _equal(v, constant))
    bounds: dict[str, Callable[[Any, Any], bool]] = {
        "minimum": lambda v, b: v >= b,
        "maximum": lambda v, b: v <= b,
        "exclusiveMinimum": lambda v, b: v > b,
        "exclusiveMaximum": lambda v, b: v < b,
    }
    for keyword, compare in bounds.items():
        if keyword in schema:
            checks.append(_bounded(compare, schema[keyword]))
    if "minLength" in schema:
        low = int(schema["minLength"])
        checks.append(lambda v: not isinstance(v, str) or len(v) >= low)
    if "maxLength" in schema:
        high = int(schema["maxLength"])
        checks.append(lambda v: not isinstance(v, str) or len(v) <= high)
    if "pattern" in schema:
        regex = re.compile(schema["pattern"])
        checks.append(lambda v: not isinstance(v, str) or regex.search(v) is not None)
    return lambda v: all(c(v) for c in checks)


def compile_schema(schema: dict[str, Any]) -> Check | None:
    """A check equivalent to the schema for flat-object schemas, else None (use jsonschema).

    Supported at object level: type (object), required, properties (typed/bounded scalar fields),
    additionalProperties (boolean) and if/then/else over sub-schemas of the same kind.
    """
    if not isinstance(schema, dict) or set(schema) - _OBJECT_KEYWORDS - _CONDITIONAL - _ANNOTATIONS:
        return None
    if "type" in schema and schema["type"] != "object":
        return None
    must_be_object = schema.get("type") == "object"
    required = list(schema.get("required", []))
    properties: dict[str, Check] = {}
    for name, sub in (schema.get("properties") or {}).items():
        check = _field_check(sub)
        if check is None:
            return None
        properties[name] = check
    additional = schema.get("additionalProperties", True)
    if not isinstance(additional, bool):
        return None
    branches: list[Check | None] = []
    for keyword in ("if", "then", "else"):
        if keyword in schema:
            compiled = compile_schema(schema[keyword])
            if compiled is None:
                return None
            branches.append(compiled)
        else:
            branches.append(None)
    if_check, then_check, else_check = branches

    def check_document(document: Any) -> bool:
        if not isinstance(document, dict):
            return not must_be_object and if_check is None
        for name in required:
            if name not in document:
                return False
        for name, value in document.items():
            field = properties.get(name)
            if field is None:
                if not additional:
                    return False
            elif not field(value):
                return False
        if if_check is not None:
            branch = then_check if if_check(document) else else_check
            if branch is not None and not branch(document):
                return False
        return True

    return check_document
