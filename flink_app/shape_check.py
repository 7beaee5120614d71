"""The canonical shape of a valid event as one regular expression, for validation in Java (issue 13).

Why: every event crosses into Python once per job only to be validated (ADR 0012); 10,000 events/s on
2 cores leaves no room for that. The generator writes compact JSON with a fixed field order
(``generator/encode.py``), so a valid event's *text* has a narrow shape that a regular expression can
describe - and Flink SQL's ``REGEXP`` evaluates in Java at a few microseconds. :data:`SHAPE` is built
to be **sound**: every text it matches in full is a :class:`flink_app.events.Transaction` for
``events.parse_event`` (ids from a safe alphabet and bounded, no backslash anywhere so no escape can
smuggle NUL or a lone surrogate, amounts and coordinates as short decimal literals inside their bounds,
calendar-valid times, the contract's enums). It is not complete: an event of another valid shape (a
different key order, an escape, 29 February) does not match, and goes to the Python check as today.
The future-skew bound depends on the wall clock and is checked apart from the shape.

Proven by property tests (``tests/flink/test_shape_check.py``): hypothesis draws texts from the
expression itself and every one must be accepted by ``parse_event``; every event the generator writes
(all fraud patterns) must match; a schema change that the shape does not follow fails a test.
Not yet used by the jobs: ADR 0012 "The floor of the Java side" says where it goes next.
"""

from __future__ import annotations

import re

#: Ids (transaction, customer, card, store): at most 64 characters from an alphabet that needs no JSON
#: escape and holds no quote or backslash (the contract allows more: those take the Python path).
ID = r"[A-Za-z0-9_-]{1,64}"
#: 0 < amount <= 999,999,999.99 (< MAX_AMOUNT = 1e9), exactly two decimals as the generator writes them.
AMOUNT = r"(?:0\.(?:0[1-9]|[1-9][0-9])|[1-9][0-9]{0,8}\.[0-9]{2})"
#: Calendar-valid 'YYYY-MM-DDTHH:MM:SS.mmmZ' in 2000-2099 (29 February is left to the Python path).
_MONTH_DAY = (r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
              r"|(?:0[13-9]|1[0-2])-(?:29|30)"
              r"|(?:0[13578]|1[02])-31)")
TIME = rf"20[0-9]{{2}}-{_MONTH_DAY}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{{3}}Z"
LAT = r"-?(?:(?:[0-9]|[1-8][0-9])\.[0-9]{5}|90\.00000)"
LON = r"-?(?:(?:[0-9]|[1-9][0-9]|1[0-7][0-9])\.[0-9]{5}|180\.00000)"
CATEGORIES = ("grocery", "restaurant", "fuel", "electronics", "fashion", "travel", "pharmacy", "entertainment",
              "jewelry", "online_services")
CHANNELS = ("pos", "online", "atm")
PATTERNS = ("velocity_burst", "impossible_travel", "high_value", "card_testing", "unusual_hour_category")

#: Field names in the order the generator writes them (a test compares them with the schema's).
FIELDS = ("schema_version", "transaction_id", "customer_id", "card_id", "store_id", "store_category", "amount",
          "currency", "channel", "event_time", "lat", "lon", "is_fraud_truth", "fraud_pattern")


def _one_of(values: tuple[str, ...]) -> str:
    return "(?:" + "|".join(re.escape(v) for v in values) + ")"


SHAPE = (
    r'\{"schema_version":1'
    rf',"transaction_id":"{ID}","customer_id":"{ID}","card_id":"{ID}","store_id":"{ID}"'
    rf',"store_category":"{_one_of(CATEGORIES)}","amount":{AMOUNT},"currency":"[A-Z]{{3}}"'
    rf',"channel":"{_one_of(CHANNELS)}","event_time":"{TIME}","lat":{LAT},"lon":{LON}'
    rf',"is_fraud_truth":(?:false,"fraud_pattern":null|true,"fraud_pattern":"{_one_of(PATTERNS)}")\}}'
)
_COMPILED = re.compile(SHAPE)


def has_shape(text: str) -> bool:
    """True when ``text`` in full is an event of the canonical shape (then ``parse_event`` accepts it,
    future skew aside)."""
    return _COMPILED.fullmatch(text) is not None
