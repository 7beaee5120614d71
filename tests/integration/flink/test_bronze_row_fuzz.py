"""Property-based fuzzing of the bronze row against a real PostgreSQL (issue 17).

Property: every generated message (arbitrary bytes, deep nesting, odd numbers, NUL / surrogates, wrong
types, valid events with one field mutated: the strategies of tests/flink/test_events_fuzz.py) either
yields a bronze row that PostgreSQL accepts through the sink's own path - Flink's upsert statement
into ``bronze.raw_transactions_inbox``, routed by the V012 trigger - or a DLQ record with a reason that
PostgreSQL's jsonb (a strict JSON reader) accepts. Nothing raises, no row lands in
``bronze.sink_rejects``. Each example runs in a transaction that is rolled back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flink_app import events, sql
from tests.flink.test_events_fuzz import MESSAGES, NOW, mutated_events

pytestmark = pytest.mark.integration

COLUMNS = [c for c, _ in sql.BRONZE_TRANSACTIONS_COLUMNS]
# Flink's PostgresDialect.getUpsertStatement for this sink, as printed by bench/SinkCost.java (:name -> %s).
UPSERT = (f"INSERT INTO {sql.INBOXES['bronze.raw_transactions']}({', '.join(COLUMNS)}) "
          f"VALUES ({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT (transaction_id) DO UPDATE SET "
          + ", ".join(f"{c}=EXCLUDED.{c}" for c in COLUMNS if c != "transaction_id"))
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def conn(warehouse_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse_dsn) as connection:
        yield connection


@pytest.fixture(scope="module")
def validator() -> events.EventValidator:
    return events.load_validator()


def check_in_postgres(conn: psycopg.Connection, validator: events.EventValidator, raw: bytes, offset: int) -> str:
    """Parse ``raw`` like the processor, write the outcome like the sinks; 'bronze' or 'dlq'."""
    result = events.parse_event(raw, validator, now=NOW)
    with conn.transaction(force_rollback=True):
        if isinstance(result, events.Invalid):
            assert result.reason in events.REASONS and result.reason != events.INTERNAL_ERROR, result
            record = events.dlq_record(raw, result, topic="transactions.raw", partition=0, offset=offset)
            stored = conn.execute("SELECT %s::jsonb", (json.dumps(record, separators=(",", ":")),)).fetchone()
            assert stored is not None and stored[0]["reason"] == result.reason
            return "dlq"
        row = events.bronze_row(result, "transactions.raw", 0, offset, "2026-11-22T12:00:01.000Z")
        conn.execute(UPSERT, row)
        stored = conn.execute(
            "SELECT payload, event_time = %s::timestamptz FROM bronze.raw_transactions WHERE transaction_id = %s",
            (result.event_time, result.transaction_id)).fetchone()
        rejects = conn.execute("SELECT sqlstate, error_message FROM bronze.sink_rejects WHERE row_key = %s",
                               (result.transaction_id,)).fetchall()
        inbox = conn.execute("SELECT count(*) FROM bronze.raw_transactions_inbox").fetchone()
        assert rejects == [], (raw[:200], rejects)
        assert stored is not None, raw[:200]
        assert stored[0] == result.payload and stored[1] is True
        assert inbox == (0,)
        return "bronze"


@FUZZ
@given(raw=MESSAGES, offset=st.integers(0, 2**62))
def test_every_message_is_a_row_postgres_accepts_or_a_dlq_record(conn, validator, raw, offset):
    check_in_postgres(conn, validator, raw, offset)


@FUZZ
@given(raw=mutated_events())
def test_mutated_events_are_accepted_by_postgres_or_dead_lettered(conn, validator, raw):
    check_in_postgres(conn, validator, raw, 1)


def test_the_inbox_dead_letters_what_postgres_refuses(conn):
    """The safety net itself: rows bronze refuses go to sink_rejects with the SQLSTATE, the rest commit."""
    good = ("fz-good", '{"a":1}', "t", 0, 1, "2026-11-22T12:00:00.000Z", "2026-11-22T12:00:01.000Z")
    refused = [
        ("fz-inf", '{"amount":Infinity}', "t", 0, 2, "2026-11-22T12:00:00.000Z", None),  # 22P02
        ("fz-surrogate", '{"a":"\\ud800"}', "t", 0, 3, "2026-11-22T12:00:00.000Z", None),  # 22P02
        ("fz-nul", '{"a":"\\u0000"}', "t", 0, 4, "2026-11-22T12:00:00.000Z", None),  # 22P05
        ("fz-time", '{"a":1}', "t", 0, 5, "2026-02-30T12:00:00.000Z", None),  # 22008
        ("fz-long-" + "".join(chr(0x4E00 + i * 7919 % 20000) for i in range(3000)), '{"a":1}', "t", 0, 6,
         None, None),  # 54000: too large for the primary-key btree
        ("fz-null-payload", None, "t", 0, 7, None, None),  # 23502
    ]
    with conn.transaction(force_rollback=True), conn.cursor() as cursor:
        cursor.executemany(UPSERT, [refused[0], good, *refused[1:]])
        rejected = dict(conn.execute("SELECT left(row_key, 20), sqlstate FROM bronze.sink_rejects "
                                     "WHERE row_key LIKE 'fz-%'").fetchall())
        kept = conn.execute("SELECT payload FROM bronze.raw_transactions WHERE transaction_id = 'fz-good'").fetchone()
        inbox = conn.execute("SELECT count(*) FROM bronze.raw_transactions_inbox").fetchone()
    assert rejected == {"fz-inf": "22P02", "fz-surrogate": "22P02", "fz-nul": "22P05", "fz-time": "22008",
                        refused[4][0][:20]: "54000", "fz-null-payload": "23502"}
    assert kept == ({"a": 1},) and inbox == (0,)


def test_a_replayed_reject_is_counted_not_duplicated(conn):
    bad = ("fz-replay", '{"a":NaN}', "t", 0, 1, None, None)
    with conn.transaction(force_rollback=True):
        for _ in range(3):
            conn.execute(UPSERT, bad)
        rows = conn.execute("SELECT attempts FROM bronze.sink_rejects WHERE row_key = 'fz-replay'").fetchall()
    assert rows == [(3,)]


def test_the_alerts_inbox_routes_and_dead_letters(conn):
    columns = [c for c, _ in sql.BRONZE_ALERTS_COLUMNS]
    upsert = (f"INSERT INTO {sql.INBOXES['bronze.raw_fraud_alerts']}({', '.join(columns)}) "
              f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT (alert_id) DO UPDATE SET "
              + ", ".join(f"{c}=EXCLUDED.{c}" for c in columns if c != "alert_id"))
    good = ("fz-a1", "fz-a1", "c1", 0.9, 0.1, sql.pg_text_array(["high_value"]), "v1", '{"alert_id":"fz-a1"}',
            "2026-11-22T12:00:00.000Z", "2026-11-22T12:00:01.000Z")
    bad = ("fz-a2", "fz-a2", "c1", 0.9, 0.1, "{unterminated", "v1", '{"x":NaN}', "2026-11-22T12:00:00.000Z", None)
    with conn.transaction(force_rollback=True), conn.cursor() as cursor:
        cursor.executemany(upsert, [good, bad])
        kept = conn.execute("SELECT rules_fired FROM bronze.raw_fraud_alerts WHERE alert_id = 'fz-a1'").fetchone()
        rejected = conn.execute("SELECT target_table, sqlstate FROM bronze.sink_rejects WHERE row_key = 'fz-a2'")
        assert rejected.fetchall() == [("bronze.raw_fraud_alerts", "22P02")]
    assert kept == (["high_value"],)
