"""A corpus of hostile ``transactions.raw`` messages: bytes no job may choke on (issue 17).

Shared by the hostile-input test (tests/integration/flink/test_hostile_input.py) and the fault tests.
Each :class:`Hostile` carries the bytes and the DLQ reason the transaction processor must give
(``flink_app.events`` reason codes). Fixed kinds are written out by hand, their reasons too, so they
do not depend on the validator under test; ``random_hostile`` adds seeded random mutations whose
expected reason is what the processor's own parser says in-process (the running job must agree, and
must not stop). Every message carries the run id in its bytes where it can, so a run's DLQ records
are told apart from earlier runs' by source offset, not by content.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Hostile:
    kind: str
    raw: bytes | None
    reason: str  # the DLQ reason the transaction processor gives


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def valid_event(run: str, i: int, at: datetime, **overrides: Any) -> dict[str, Any]:
    """A contract-valid event of this run (customer and store ids carry the run id)."""
    event: dict[str, Any] = {
        "schema_version": 1, "transaction_id": f"hx-{run}-{i}", "customer_id": f"{run}-c{i % 7}",
        "card_id": f"card-{i % 7}", "store_id": f"{run}-store-{i % 3}", "store_category": "grocery",
        "amount": round(10 + (i * 37) % 400 + 0.25, 2), "currency": "EUR", "channel": "pos",
        "event_time": iso(at), "lat": 48.137, "lon": 11.575, "is_fraud_truth": False, "fraud_pattern": None,
    }
    event.update(overrides)
    return event


def _token(event: dict[str, Any], field: str, token: str) -> bytes:
    """``event`` with ``field`` set to a raw JSON token that Python's json.dumps would never write."""
    marker = "__HOSTILE_TOKEN__"
    return json.dumps(event | {field: marker}).replace(f'"{marker}"', token).encode()


def fixed_corpus(run: str, now: datetime | None = None) -> list[Hostile]:
    """Hand-written hostile kinds, one message each, with the reason the processor must give."""
    now = now or datetime.now(UTC)
    n = iter(range(10**6))

    def base() -> dict[str, Any]:
        return valid_event(run, 900_000 + next(n), now - timedelta(minutes=2), transaction_id=f"bad-{run}-{next(n)}")

    big_id = "t" * 3000
    return [
        Hostile("amount Infinity", _token(base(), "amount", "Infinity"), "non_finite_number"),
        Hostile("amount -Infinity", _token(base(), "amount", "-Infinity"), "non_finite_number"),
        Hostile("amount NaN", _token(base(), "amount", "NaN"), "non_finite_number"),
        Hostile("amount 1e400 (overflows to inf)", _token(base(), "amount", "1e400"), "non_finite_number"),
        Hostile("lat -1E+309", _token(base(), "lat", "-1E+309"), "non_finite_number"),
        Hostile("amount with 5000 digits", _token(base(), "amount", "7" * 5000), "number_too_large"),
        Hostile("amount 1e300 (finite, beyond numeric sums)", _token(base(), "amount", "1e300"), "out_of_range"),
        Hostile("NUL escape in customer_id", _token(base(), "customer_id", '"c\\u0000x"'), "nul_character"),
        Hostile("lone high surrogate in store_id", _token(base(), "store_id", '"s\\ud800"'), "invalid_unicode"),
        Hostile("lone low surrogate in card_id", _token(base(), "card_id", '"\\udc00k"'), "invalid_unicode"),
        Hostile("reversed surrogate pair", _token(base(), "customer_id", '"\\ude00\\ud83d"'), "invalid_unicode"),
        Hostile("transaction_id of 3000 chars", json.dumps(base() | {"transaction_id": big_id}).encode(),
                "id_too_long"),
        Hostile("nesting 5000 deep", _token(base(), "fraud_pattern", "[" * 5000 + "]" * 5000), "too_deep"),
        Hostile("event_time one day ahead", json.dumps(base() | {"event_time": iso(now + timedelta(days=1))}).encode(),
                "future_event_time"),
        Hostile("event_time February 30", json.dumps(base() | {"event_time": "2026-02-30T10:00:00.000Z"}).encode(),
                "bad_event_time"),
        Hostile("raw NUL byte in a string", json.dumps(base()).replace('"EUR"', '"E\x00R"').encode(), "bad_json"),
        Hostile("CESU-8 surrogate bytes", json.dumps(base()).encode().replace(b'"EUR"', b'"\xed\xa0\x80"'), "not_utf8"),
        Hostile("UTF-8 BOM", b"\xef\xbb\xbf" + json.dumps(base()).encode(), "bad_json"),
        Hostile("trailing garbage", json.dumps(base()).encode() + b" {}", "bad_json"),
        Hostile("empty value", b"", "bad_json"),
        Hostile("JSON null", b"null", "not_object"),
        Hostile("JSON string", b'"just a string"', "not_object"),
        Hostile("boolean amount", json.dumps(base() | {"amount": True}).encode(), "wrong_type"),
        Hostile("object as customer_id", json.dumps(base() | {"customer_id": {"id": 1}}).encode(), "wrong_type"),
        Hostile("duplicate key, last one bad", json.dumps(base()).encode()[:-1] + b', "amount": -1}', "out_of_range"),
        Hostile("unknown field", json.dumps(base() | {"extra": 1}).encode(), "schema_violation"),
        Hostile("tombstone", None, "null_value"),
    ]


def random_hostile(run: str, seed: int, count: int, now: datetime | None = None) -> list[Hostile]:
    """Seeded random mutations of valid events that the processor's parser rejects (reason from it)."""
    from flink_app import events  # the processor's own parser decides the expected reason

    now = now or datetime.now(UTC)
    rng = random.Random(seed)
    odd_values: list[Any] = [None, True, -1, 0, 10**30, -0.5, 1e-320, "", " ", "\u2028", "12.50", [], {}, [1, [2]],
                             "x" * 400, "\U0001f600" * 300, "2026-11-22 07:00:00", "DROP TABLE bronze;--"]
    tokens = ["NaN", "-Infinity", "1e999", "-1e309", "1" * 4400, "0." + "9" * 150, '"\\u0000"', '"\\ud83d"',
              '"a\\udfffb"', "[" * 40 + "]" * 40, "{}" * 2, "tru", "0x10", "+1", ".5", "01"]
    out: list[Hostile] = []
    attempts = 0
    while len(out) < count and attempts < count * 50:
        attempts += 1
        event = valid_event(run, 800_000 + attempts, now - timedelta(minutes=1), transaction_id=f"rnd-{run}-{attempts}")
        field = rng.choice([*event, "zz_extra"])
        if rng.random() < 0.5:
            raw = _token(event, field, rng.choice(tokens))
        else:
            raw = json.dumps(event | {field: rng.choice(odd_values)}).encode()
        if rng.random() < 0.15:  # flip one byte somewhere
            position = rng.randrange(len(raw))
            raw = raw[:position] + bytes([rng.randrange(256)]) + raw[position + 1:]
        result = events.parse_event(raw)
        if isinstance(result, events.Invalid):
            out.append(Hostile(f"random #{attempts} ({field})", raw, result.reason))
    return out
