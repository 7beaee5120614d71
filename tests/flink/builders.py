"""Crafted events for the pure flink_app tests (valid per the generator's contract unless overridden)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

BASE_TIME = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def make_event(i: int = 0, *, seconds: float = 0.0, **overrides: Any) -> dict[str, Any]:
    """A schema-valid event (the generator's contract); ``overrides`` set or replace fields."""
    event: dict[str, Any] = {
        "schema_version": 1,
        "transaction_id": f"t-{i}",
        "customer_id": "c-1",
        "card_id": "card-1",
        "store_id": "s-1",
        "store_category": "grocery",
        "amount": 25.0,
        "currency": "EUR",
        "channel": "pos",
        "event_time": iso(BASE_TIME + timedelta(seconds=seconds)),
        "lat": 48.137,
        "lon": 11.575,
        "is_fraud_truth": False,
        "fraud_pattern": None,
    }
    event.update(overrides)
    return event
