"""A fast, exact checker for the simple JSON Schemas our event contract uses.

Why: ``jsonschema``'s validator costs ~300 microseconds per event here, more than everything else
the transaction processor does per record. The generator's schema is a flat object of typed,
bounded fields; for that subset of JSON Schema this module generates one straight-line Python
function from the same file (source text, compiled once per worker). If the schema uses any keyword
outside the subset, :func:`compile_schema` returns None and the caller uses ``jsonschema`` for every
event. ``jsonschema`` still produces the error reason for events this check rejects.

Straight-line code instead of a tree of closures (issue 13, ADR 0012): every event is checked by the
processor, the detector and the aggregator, and a closure per keyword cost ~30 us per event where the
generated code costs ~2-5 us. Exactness is proven against ``jsonschema`` by property tests over random
schemas of the subset and random documents (``tests/flink/test_schema_check.py``).
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

#: A JSON type name -> a Python expression over ``v`` that is true exactly for values of that type
#: (as ``json.loads`` makes them: bool is not a number; an integral float is an integer, as in 2020-12).
_TYPE_EXPRESSIONS = {
    "string": "type(v) is str",
    "number": "(type(v) is int or type(v) is float)",
    "integer": "(type(v) is int or (type(v) is float and v.is_integer()))",
    "boolean": "type(v) is bool",
    "null": "v is None",
    "object": "type(v) is dict",
    "array": "type(v) is list",
}
_NUMBER = _TYPE_EXPRESSIONS["number"]
_BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


def _equal(a: Any, b: Any) -> bool:
    """JSON equality of scalars: a bool equals only a bool (``True == 1`` in Python)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


class _Unsupported(Exception):
    """The schema uses something outside the subset: the caller falls back to jsonschema."""


class _Generator:
    """Writes the check's source; constants (sets, regexes, bounds) go into its namespace by name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {"_MISSING": object(), "_equal": _equal}
        self.functions = 0

    def constant(self, value: Any) -> str:
        name = f"_c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def field(self, schema: Any) -> str:
        """A boolean expression over ``v`` equivalent to the field schema."""
        if not isinstance(schema, dict) or set(schema) - _FIELD_KEYWORDS - _ANNOTATIONS:
            raise _Unsupported
        terms: list[str] = []
        names: list[str] = []
        if "type" in schema:
            names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not names or any(not isinstance(n, str) or n not in _TYPE_EXPRESSIONS for n in names):
                raise _Unsupported
            terms.append("(" + " or ".join(_TYPE_EXPRESSIONS[n] for n in names) + ")")
        # A bound applies only to its kind of value; the guard is left out when the type already says so.
        numeric_guard = "" if names and set(names) <= {"number", "integer"} else f"not {_NUMBER} or "
        string_guard = "" if names == ["string"] else "type(v) is not str or "
        if "enum" in schema:
            if not isinstance(schema["enum"], list):
                raise _Unsupported
            terms.append(self.one_of(schema["enum"]))
        if "const" in schema:
            terms.append(self.one_of([schema["const"]]))
        for keyword, operator in _BOUNDS.items():
            if keyword in schema:
                bound = schema[keyword]
                if isinstance(bound, bool) or not isinstance(bound, int | float):
                    raise _Unsupported
                terms.append(f"({numeric_guard}v {operator} {self.constant(bound)})")
        for keyword, operator in (("minLength", ">="), ("maxLength", "<=")):
            if keyword in schema:
                length = schema[keyword]
                if isinstance(length, bool) or not isinstance(length, int):
                    raise _Unsupported
                terms.append(f"({string_guard}len(v) {operator} {length})")
        if "pattern" in schema:
            if not isinstance(schema["pattern"], str):
                raise _Unsupported
            search = self.constant(re.compile(schema["pattern"]).search)
            terms.append(f"({string_guard}{search}(v) is not None)")
        return " and ".join(terms) or "True"

    def one_of(self, options: list[Any]) -> str:
        """``v`` equals one of the (scalar) options. Containers are left to jsonschema (its equality
        compares their members without Python's ``True == 1``)."""
        if any(isinstance(o, list | dict) for o in options):
            raise _Unsupported
        strings = frozenset(o for o in options if isinstance(o, str))
        others = tuple(o for o in options if o is not None and not isinstance(o, str))
        terms = [f"(type(v) is str and v in {self.constant(strings)})"] if strings else []
        if any(o is None for o in options):
            terms.append("v is None")
        terms += [f"_equal(v, {self.constant(o)})" for o in others]
        return "(" + " or ".join(terms) + ")" if terms else "False"

    def document(self, schema: Any) -> str:
        """A function (its name) equivalent to the object schema; nested if/then/else get their own."""
        if not isinstance(schema, dict) or set(schema) - _OBJECT_KEYWORDS - _CONDITIONAL - _ANNOTATIONS:
            raise _Unsupported
        if "type" in schema and schema["type"] != "object":
            raise _Unsupported
        required = schema.get("required", [])
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties", True)
        if (not isinstance(required, list) or not all(isinstance(n, str) for n in required)
                or not isinstance(properties, dict) or not isinstance(additional, bool)):
            raise _Unsupported
        branches = {k: self.document(schema[k]) if k in schema else None for k in ("if", "then", "else")}
        expressions = {name: self.field(sub) for name, sub in properties.items()}

        name = f"_check{self.functions}"
        self.functions += 1
        body = [f"def {name}(d):"]
        conditional = []
        if branches["if"] is not None:
            then_part = f"{branches['then']}(d)" if branches["then"] else "True"
            else_part = f"{branches['else']}(d)" if branches["else"] else "True"
            conditional = [f"    if not ({then_part} if {branches['if']}(d) else {else_part}):", "        return False"]
        # Not an object: type "object" fails; required/properties/additionalProperties do not apply.
        body.append("    if type(d) is not dict:")
        if schema.get("type") == "object":
            body.append("        return False")
        else:
            body += [*("    " + line for line in conditional), "        return True"]
        if required:
            body += ["    if " + " or ".join(f"{n!r} not in d" for n in dict.fromkeys(required)) + ":",
                     "        return False"]
        if not additional:
            body += [f"    if not d.keys() <= {self.constant(frozenset(properties))}:", "        return False"]
        for field, expression in expressions.items():
            if expression == "True":
                continue
            if field in required:
                body.append(f"    v = d[{field!r}]")
                body += [f"    if not ({expression}):", "        return False"]
            else:
                body.append(f"    v = d.get({field!r}, _MISSING)")
                body += [f"    if v is not _MISSING and not ({expression}):", "        return False"]
        body += [*conditional, "    return True", ""]
        self.lines += body
        return name


def generate_source(schema: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    """(source, function name, namespace) of the check for ``schema``, or None outside the subset."""
    generator = _Generator()
    try:
        entry = generator.document(schema)
    except (_Unsupported, re.error):
        return None
    return "\n".join(generator.lines), entry, generator.namespace


def compile_schema(schema: dict[str, Any]) -> Check | None:
    """A check equivalent to the schema for flat-object schemas, else None (use jsonschema).

    Supported at object level: type (object), required, properties (typed/bounded scalar fields),
    additionalProperties (boolean) and if/then/else over sub-schemas of the same kind; in a field:
    type, enum and const of scalars, the four numeric bounds, minLength, maxLength and pattern.
    """
    generated = generate_source(schema)
    if generated is None:
        return None
    source, entry, namespace = generated
    exec(compile(source, "<schema_check>", "exec"), namespace)  # noqa: S102 - our own generated source
    check: Check = namespace[entry]
    return check
