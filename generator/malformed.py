"""Malformed messages on demand: what a consumer's validation and dead-letter path must survive.

Each kind breaks a valid event in one specific, testable way; the ledger records the kind so a test
can check the consumer rejected exactly these messages for the right reason:

* ``bad_json`` – the JSON text cut in half (never parses).
* ``missing_field`` – one required field removed (``amount``, ``event_time``, ``customer_id`` or
  ``store_id``, rotating with the sequence number).
* ``wrong_type`` – ``"amount": "abc"``.
* ``negative_amount`` – the amount negated (violates ``exclusiveMinimum: 0``).
"""

from __future__ import annotations

import re

from generator.stream import MALFORMED_KINDS

MISSING_FIELD_CHOICES = ("amount", "event_time", "customer_id", "store_id")
_AMOUNT = re.compile(r'"amount":([0-9.]+),')


def corrupt(valid_json: str, kind: str, sequence: int) -> str:
    """The malformed text for a valid event ``valid_json``."""
    if kind == "bad_json":
        return valid_json[: max(1, len(valid_json) // 2)]
    if kind == "missing_field":
        field = MISSING_FIELD_CHOICES[sequence % len(MISSING_FIELD_CHOICES)]
        return re.sub(rf'"{field}":("[^"]*"|[^,]*),', "", valid_json, count=1)
    if kind == "wrong_type":
        return _AMOUNT.sub('"amount":"abc",', valid_json, count=1)
    if kind == "negative_amount":
        return _AMOUNT.sub(r'"amount":-\1,', valid_json, count=1)
    raise ValueError(f"unknown malformed kind {kind!r}; known: {MALFORMED_KINDS}")
