"""A deterministic bronze data set for the dbt tests, and the gold numbers expected from it.

Everything is built in Python: the rows loaded into bronze and, independently of dbt's SQL, what
gold must contain (which rows are valid, counts, sums, fraud per day, sales per hour).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

CATEGORIES = ("grocery", "restaurant", "fuel", "electronics", "fashion", "travel", "pharmacy",
              "entertainment", "jewelry", "online_services")
CHANNELS = ("pos", "online", "atm")
PATTERNS = ("velocity_burst", "impossible_travel", "high_value", "card_testing", "unusual_hour_category")
BASE = datetime(2026, 1, 5, tzinfo=UTC)  # fixed and in the past: event times never depend on the clock
TOPIC = "transactions.raw"


@dataclass
class BronzeTransaction:
    transaction_id: str
    payload: Any  # usually a dict; bad rows may hold any JSON value
    event_time: datetime | None  # bronze's parsed column (None when the job could not parse it)
    offset: int
    # Expected outcome in silver/gold:
    valid: bool = True
    amount: Decimal | None = None
    reason: str | None = None  # one reason silver must report for an invalid row


@dataclass
class BronzeAlert:
    alert_id: str
    transaction_id: str
    customer_id: str
    fraud_score: float
    model_score: float | None
    event_time: datetime | None
    rules_fired: list[str] = field(default_factory=lambda: ["high_value"])
    valid: bool = True


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def good_payload(i: int, *, id_prefix: str = "T", minutes_step: int = 13) -> dict[str, Any]:
    store = i % 15
    fraud = i % 17 == 0
    event_time = BASE + timedelta(minutes=i * minutes_step, seconds=i % 60, milliseconds=(i * 7) % 1000)
    return {
        "schema_version": 1,
        "transaction_id": f"{id_prefix}{i:06d}",
        "customer_id": f"C{(i % 40) + 1:06d}",
        "card_id": f"K{(i % 40) + 1:06d}",
        "store_id": f"S{store + 1:04d}",
        "store_category": CATEGORIES[store % len(CATEGORIES)],
        "amount": round(5 + (i * 37) % 500 + (i % 7) * 0.13, 2),
        "currency": "EUR",
        "channel": CHANNELS[i % 3],
        "event_time": iso(event_time),
        "lat": round(48.0 + store * 0.01, 5),
        "lon": round(2.0 + store * 0.01, 5),
        "is_fraud_truth": fraud,
        "fraud_pattern": PATTERNS[i % len(PATTERNS)] if fraud else None,
    }


def valid_row(payload: dict[str, Any], offset: int) -> BronzeTransaction:
    event_time = datetime.fromisoformat(payload["event_time"].replace("Z", "+00:00"))
    return BronzeTransaction(payload["transaction_id"], payload, event_time, offset,
                             amount=Decimal(str(payload["amount"])).quantize(Decimal("0.01")))


def bad_rows(offset: int) -> list[BronzeTransaction]:
    """One bronze row per way a payload can break the contract; all must be flagged, none may crash."""
    rows: list[BronzeTransaction] = []

    def bad(tid: str, payload: Any, reason: str, event_time: datetime | None = BASE) -> None:
        rows.append(BronzeTransaction(tid, payload, event_time, offset + len(rows), valid=False, reason=reason))

    def variant(n: int, **changes: Any) -> dict[str, Any]:
        payload = good_payload(900 + n)
        for key, value in changes.items():
            if value is ...:
                payload.pop(key)
            else:
                payload[key] = value
        return payload

    bad("X-null-id", variant(0, transaction_id=None), "missing_transaction_id")
    bad("X-empty-id", variant(1, transaction_id="  "), "missing_transaction_id")
    bad("T000902", variant(2, amount=-25.0), "non_positive_amount")
    bad("T000903", variant(3, amount=0), "non_positive_amount")
    bad("T000904", variant(4, amount="abc"), "invalid_amount")
    bad("T000905", variant(5, amount=...), "invalid_amount")
    bad("T000906", variant(6, amount=1e30), "amount_out_of_range")
    bad("X-array", [1, 2, 3], "payload_not_object", None)
    bad("X-scalar", "just a string", "payload_not_object", None)
    bad("X-partial", {"transaction_id": "X-partial"}, "missing_customer_id", None)
    bad("T000907", variant(7, event_time="not-a-date"), "invalid_event_time", None)
    bad("T000908", variant(8, event_time="2026-02-30T10:00:00Z"), "invalid_event_time", None)
    bad("T000909", variant(9, channel="carrier-pigeon"), "invalid_channel")
    bad("T000910", variant(10, customer_id=...), "missing_customer_id")
    bad("T000911", variant(11, store_category="casino"), "invalid_store_category")
    bad("T000912", variant(12, lat="north"), "invalid_location")
    bad("T000913", variant(13, schema_version=99), "unsupported_schema_version")
    bad("T000914", variant(14, transaction_id="T999999"), "transaction_id_mismatch")
    bad("T000915", variant(15, currency=42), "invalid_currency")
    # Stamped far after it was ingested (more than the allowed clock skew).
    future = datetime(2100, 1, 1, tzinfo=UTC)
    bad("T000916", variant(16, event_time=iso(future)), "future_event_time", future)
    return rows


@dataclass
class Dataset:
    transactions: list[BronzeTransaction]
    alerts: list[BronzeAlert]

    # -- expectations, computed from the Python objects only -------------------------------------
    def valid_transactions(self) -> dict[str, BronzeTransaction]:
        return {t.transaction_id: t for t in self.transactions if t.valid}

    def gold_alerts(self) -> dict[str, BronzeAlert]:
        """Valid alerts on valid transactions (one alert per transaction in this data set)."""
        valid = self.valid_transactions()
        return {a.transaction_id: a for a in self.alerts if a.valid and a.transaction_id in valid}

    def expected_daily(self) -> dict[str, dict[str, Any]]:
        alerts = self.gold_alerts()
        days: dict[str, dict[str, Any]] = defaultdict(lambda: {"transaction_count": 0, "total_amount": Decimal(0),
                                                               "fraud_truth_count": 0, "alert_count": 0,
                                                               "true_positive_count": 0})
        for txn in self.valid_transactions().values():
            assert txn.event_time is not None and txn.amount is not None
            day = days[txn.event_time.astimezone(UTC).date().isoformat()]
            fraud = bool(txn.payload["is_fraud_truth"])
            day["transaction_count"] += 1
            day["total_amount"] += txn.amount
            day["fraud_truth_count"] += int(fraud)
            if txn.transaction_id in alerts:
                day["alert_count"] += 1
                day["true_positive_count"] += int(fraud)
        return dict(days)

    def expected_hourly(self) -> dict[str, tuple[int, Decimal]]:
        """(transaction count, amount) per UTC hour, all stores together."""
        hours: dict[str, tuple[int, Decimal]] = {}
        for txn in self.valid_transactions().values():
            assert txn.event_time is not None and txn.amount is not None
            hour = txn.event_time.astimezone(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
            count, total = hours.get(hour, (0, Decimal(0)))
            hours[hour] = (count + 1, total + txn.amount)
        return hours

    def expected_invalid(self) -> dict[str, str]:
        return {t.transaction_id: str(t.reason) for t in self.transactions if not t.valid}


def initial() -> Dataset:
    """~330 transactions (20 of them invalid in as many ways) and ~50 alerts (4 of them not for gold)."""
    transactions = [valid_row(good_payload(i), i) for i in range(300)]
    # A numeric string amount is accepted (typed in silver).
    stringy = good_payload(300)
    stringy["amount"] = "12.50"
    transactions.append(BronzeTransaction("T000300", stringy, valid_row(good_payload(300), 300).event_time, 300,
                                          amount=Decimal("12.50")))
    transactions += bad_rows(offset=400)
    alerts = []
    for txn in transactions[:300]:
        i = int(txn.transaction_id[1:])
        if i % 10 == 0 or (txn.payload["is_fraud_truth"] and i % 3 != 0):
            assert txn.event_time is not None
            alerts.append(BronzeAlert(txn.transaction_id, txn.transaction_id, txn.payload["customer_id"],
                                      0.7 + (i % 30) / 100, 0.5 + (i % 50) / 100, txn.event_time))
    alerts += [
        # invalid score: flagged in silver, not in gold
        BronzeAlert("T000001", "T000001", "C000002", 1.5, 0.4, BASE, valid=False),
        # blank customer: flagged
        BronzeAlert("T000002", "T000002", " ", 0.8, 0.4, BASE, valid=False),
        # valid alert whose transaction is invalid (negative amount): silver only
        BronzeAlert("T000902", "T000902", "C000023", 0.9, 0.9, BASE),
        # valid alert whose transaction has not arrived yet (arrives in the late batch)
        BronzeAlert("L000005", "L000005", "C000006", 0.95, 0.9, BASE),
    ]
    return Dataset(transactions, alerts)


def late_batch(existing: Dataset) -> tuple[Dataset, Dataset]:
    """New rows for the incremental run: late events for hours and days already built, events of new
    days, an upsert, a previously valid transaction overwritten by an invalid payload, and new alerts.
    Returns (everything bronze then holds, just the new rows)."""
    transactions = [valid_row(good_payload(i, id_prefix="L", minutes_step=17), 1000 + i) for i in range(40)]
    transactions += [valid_row(good_payload(i, id_prefix="L", minutes_step=2000), 1000 + i) for i in range(40, 45)]
    updated = good_payload(7)
    updated["amount"] = 777.77  # redelivered with a corrected amount (bronze upsert)
    transactions.append(valid_row(updated, 2007))
    broken = good_payload(8)
    broken["amount"] = -1  # overwritten by an invalid version: must leave gold
    transactions.append(BronzeTransaction("T000008", broken, valid_row(good_payload(8), 0).event_time, 2008,
                                          valid=False, reason="non_positive_amount"))
    alerts = [
        BronzeAlert("T000011", "T000011", "C000012", 0.85, 0.6, BASE),
        BronzeAlert("L000020", "L000020", "C000021", 0.91, 0.8, BASE),
    ]
    merged_txns = {t.transaction_id: t for t in existing.transactions}
    merged_txns.update({t.transaction_id: t for t in transactions})
    merged_alerts = {a.alert_id: a for a in existing.alerts}
    merged_alerts.update({a.alert_id: a for a in alerts})
    return Dataset(list(merged_txns.values()), list(merged_alerts.values())), Dataset(transactions, alerts)


# -- loading ---------------------------------------------------------------------------------------

TRUNCATE = "TRUNCATE bronze.raw_transactions, bronze.raw_fraud_alerts, bronze.realtime_metrics"

UPSERT_TRANSACTION = """
INSERT INTO bronze.raw_transactions
    (transaction_id, payload, kafka_topic, kafka_partition, kafka_offset, event_time, ingested_at)
VALUES (%s, %s, %s, %s, %s, %s, now() - %s::interval)
ON CONFLICT (transaction_id) DO UPDATE SET payload = EXCLUDED.payload, kafka_offset = EXCLUDED.kafka_offset,
    event_time = EXCLUDED.event_time, ingested_at = EXCLUDED.ingested_at
"""

UPSERT_ALERT = """
INSERT INTO bronze.raw_fraud_alerts
    (alert_id, transaction_id, customer_id, fraud_score, model_score, rules_fired, model_version, payload,
     event_time, detected_at)
VALUES (%s, %s, %s, %s, %s, %s, 'v1', %s, %s, now() - %s::interval)
ON CONFLICT (alert_id) DO UPDATE SET fraud_score = EXCLUDED.fraud_score, detected_at = EXCLUDED.detected_at
"""


def load(dsn: str, data: Dataset, *, truncate: bool, ingested_ago: str = "0 seconds") -> None:
    """Write ``data`` into bronze, upserting like the Flink sinks. Load timestamps (ingested_at, and
    detected_at, which the fraud_detector stamps at processing time) are ``ingested_ago`` before now."""
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        if truncate:
            cur.execute(TRUNCATE)
        cur.executemany(UPSERT_TRANSACTION, [
            (t.transaction_id, Jsonb(t.payload), TOPIC, t.offset % 3, t.offset, t.event_time, ingested_ago)
            for t in data.transactions
        ])
        cur.executemany(UPSERT_ALERT, [
            (a.alert_id, a.transaction_id, a.customer_id, a.fraud_score, a.model_score, a.rules_fired,
             Jsonb({"alert_id": a.alert_id, "fraud_score": a.fraud_score}), a.event_time, ingested_ago)
            for a in data.alerts
        ])

