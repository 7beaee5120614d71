"""The precise, measurable definition of each injected fraud pattern, and reference checkers.

A detector is measured against these definitions, so they are written once, here, and used both by
the injector (:mod:`generator.patterns`, which produces episodes that satisfy them) and by the tests
(which check that labelled episodes match and that legit traffic never does). The README repeats them
in prose. Hours are UTC.

Definitions (per customer, over its valid events in event-time order):

* ``velocity_burst`` – at least 5 transactions within 60 s (window ``(t-60 s, t]``).
* ``impossible_travel`` – a transaction at least 100 km from the customer's previous transaction with
  implied speed (great-circle km / elapsed hours) above 900 km/h.
* ``high_value`` – amount > 5 x the customer's profile p99 (generated as 8–20 x p99; since sigma <= 0.75
  that is also far above the profile mean + 6 std).
* ``card_testing`` – at least 5 transactions with amount < 2.00 within 600 s.
* ``unusual_hour_category`` – event hour in [01:00, 05:00) UTC, in a store category the customer's legit
  traffic never uses, with amount >= 4 x the customer's profile mean.

Guarantees for legit (unlabelled) traffic, which is what lets a detector reach high precision:
consecutive legit transactions of one customer are >= 10 min apart and <= 2 x 8 km apart (so no burst
and <= 100 km/h); legit amounts lie in [2.00, p99]; legit hours are in [06:00, 23:00) UTC and legit
categories are the customer's preferred ones. Fraud episodes are placed so that the transactions
*around* them do not match any pattern either (see :mod:`generator.patterns`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

VELOCITY_BURST = "velocity_burst"
IMPOSSIBLE_TRAVEL = "impossible_travel"
HIGH_VALUE = "high_value"
CARD_TESTING = "card_testing"
UNUSUAL_HOUR_CATEGORY = "unusual_hour_category"
# Index i + 1 is the pattern code used in batches (0 = legit).
FRAUD_PATTERNS: tuple[str, ...] = (
    VELOCITY_BURST, IMPOSSIBLE_TRAVEL, HIGH_VALUE, CARD_TESTING, UNUSUAL_HOUR_CATEGORY,
)

VELOCITY_MIN_COUNT = 5
VELOCITY_WINDOW_S = 60.0
TRAVEL_MAX_SPEED_KMH = 900.0
TRAVEL_MIN_KM = 100.0
HIGH_VALUE_P99_FACTOR = 5.0
CARD_TESTING_MAX_AMOUNT = 2.0
CARD_TESTING_MIN_COUNT = 5
CARD_TESTING_WINDOW_S = 600.0
UNUSUAL_HOURS = (1, 5)  # [start, end) UTC
UNUSUAL_MEAN_FACTOR = 4.0
LEGIT_MIN_GAP_S = 600.0


@dataclass(frozen=True)
class Txn:
    """The fields the definitions need, parsed from one event."""

    transaction_id: str
    customer_id: str
    ts: float
    amount: float
    lat: float
    lon: float
    category: str

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Txn:
        text = str(event["event_time"]).replace("Z", "+00:00")
        return cls(str(event["transaction_id"]), str(event["customer_id"]), datetime.fromisoformat(text).timestamp(),
                   float(event["amount"]), float(event["lat"]), float(event["lon"]), str(event["store_category"]))


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


def by_customer(events: Iterable[Mapping[str, Any]]) -> dict[str, list[Txn]]:
    """Valid events grouped per customer, in event-time order."""
    grouped: dict[str, list[Txn]] = {}
    for event in events:
        txn = Txn.from_event(event)
        grouped.setdefault(txn.customer_id, []).append(txn)
    for txns in grouped.values():
        txns.sort(key=lambda t: t.ts)
    return grouped


def _dense_windows(selected: Sequence[Txn], window_s: float, min_count: int) -> set[str]:
    """Ids of transactions in some window ``(t - window_s, t]`` holding >= ``min_count`` of ``selected``."""
    hits: set[str] = set()
    start = 0
    for end, txn in enumerate(selected):
        while selected[start].ts <= txn.ts - window_s:
            start += 1
        if end - start + 1 >= min_count:
            hits.update(t.transaction_id for t in selected[start : end + 1])
    return hits


def velocity_burst_ids(txns: Sequence[Txn]) -> set[str]:
    """Every transaction that is part of some window of >= 5 transactions within 60 s."""
    return _dense_windows(txns, VELOCITY_WINDOW_S, VELOCITY_MIN_COUNT)


def card_testing_ids(txns: Sequence[Txn]) -> set[str]:
    """Every tiny (< 2.00) transaction in some window of >= 5 tiny transactions within 600 s."""
    tiny = [t for t in txns if t.amount < CARD_TESTING_MAX_AMOUNT]
    return _dense_windows(tiny, CARD_TESTING_WINDOW_S, CARD_TESTING_MIN_COUNT)


def impossible_travel_ids(txns: Sequence[Txn]) -> set[str]:
    """Transactions >= 100 km from the previous one at an implied speed above 900 km/h."""
    hits: set[str] = set()
    for prev, txn in itertools.pairwise(txns):
        km = haversine_km(prev.lat, prev.lon, txn.lat, txn.lon)
        hours = max(txn.ts - prev.ts, 1.0) / 3600.0
        if km >= TRAVEL_MIN_KM and km / hours > TRAVEL_MAX_SPEED_KMH:
            hits.add(txn.transaction_id)
    return hits


def high_value_ids(txns: Sequence[Txn], p99: float) -> set[str]:
    return {t.transaction_id for t in txns if t.amount > HIGH_VALUE_P99_FACTOR * p99}


def unusual_hour_category_ids(txns: Sequence[Txn], used_categories: set[str], mean: float) -> set[str]:
    start, end = UNUSUAL_HOURS
    return {
        t.transaction_id for t in txns
        if start <= int(t.ts % 86400 // 3600) < end and t.category not in used_categories
        and t.amount >= UNUSUAL_MEAN_FACTOR * mean
    }
