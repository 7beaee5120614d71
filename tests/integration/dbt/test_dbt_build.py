"""The dbt project against a real PostgreSQL: build, gold numbers, idempotence, incremental = full
refresh, and bad bronze rows (flagged in silver, kept out of gold, reported by a warn test).

This module owns bronze for its duration: it truncates it, loads a deterministic data set
(tests/integration/dbt/bronze_dataset.py) and drops silver and gold before building.
Set STREAMFLOW_DBT_TEST_WAREHOUSE_DSN to run against a throwaway server instead of the stack's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.dbt import bronze_dataset
from tests.integration.dbt.dbt_cli import DbtRun, run_dbt

pytestmark = pytest.mark.integration

GOLD_TABLES = ("dim_customer", "dim_store", "fct_transactions", "fct_fraud_alerts", "agg_hourly_sales",
               "agg_daily_fraud")
SILVER_TABLES = ("stg_transactions", "stg_fraud_alerts", "int_customer_stats")


@dataclass
class Built:
    dsn: str
    work_dir: Path
    data: bronze_dataset.Dataset
    first: DbtRun
    counts_after_first: dict[str, int]
    second: DbtRun
    counts_after_second: dict[str, int]


@pytest.fixture(scope="module")
def dsn(request: pytest.FixtureRequest) -> str:
    override = os.environ.get("STREAMFLOW_DBT_TEST_WAREHOUSE_DSN")
    return override or str(request.getfixturevalue("warehouse_dsn"))


def query(dsn: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def row_counts(dsn: str) -> dict[str, int]:
    counts = {}
    for schema, tables in (("silver", SILVER_TABLES), ("gold", GOLD_TABLES)):
        for table in tables:
            counts[f"{schema}.{table}"] = query(dsn, f"select count(*) from {schema}.{table}")[0][0]
    return counts


def table_contents(dsn: str, relation: str) -> list[tuple[Any, ...]]:
    """All business columns (not the _-prefixed load timestamps), sorted, for exact comparison."""
    schema, table = relation.split(".")
    columns = [r[0] for r in query(dsn, "select column_name from information_schema.columns where "
                                        "table_schema = %s and table_name = %s and column_name not like '\\_%%' "
                                        "order by ordinal_position", (schema, table))]
    assert columns, f"{relation} has no columns"
    select = ", ".join(f'"{c}"' for c in columns)
    return query(dsn, f"select {select} from {relation} order by {select}")


def reset_warehouse(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema in ("silver", "gold"):
            conn.execute(f"drop schema if exists {schema} cascade")
            conn.execute(f"create schema {schema}")


@pytest.fixture(scope="module")
def built(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """Known bronze set, clean silver/gold, then `dbt build` twice (the second one incremental)."""
    work_dir = tmp_path_factory.mktemp("dbt")
    data = bronze_dataset.initial()
    # Loaded "two hours ago" so the bronze->silver reconciliation test (15 min grace) checks every row.
    bronze_dataset.load(dsn, data, truncate=True, ingested_ago="2 hours")
    reset_warehouse(dsn)
    first = run_dbt(["build"], dsn=dsn, work_dir=work_dir)
    counts_after_first = row_counts(dsn)
    second = run_dbt(["build"], dsn=dsn, work_dir=work_dir)
    yield Built(dsn, work_dir, data, first, counts_after_first, second, row_counts(dsn))


def test_build_passes_with_enough_tests(built: Built) -> None:
    statuses = built.first.statuses()
    models = {uid for uid in statuses if uid.startswith("model.")}
    tests = {uid for uid in statuses if uid.startswith("test.")}
    assert {uid.split(".")[-1] for uid in models} >= set(GOLD_TABLES) | set(SILVER_TABLES)
    assert len(tests) >= 25
    assert built.first.failures() == {}
    assert all(statuses[uid] == "success" for uid in models)


def test_gold_counts_and_sums_match_python(built: Built) -> None:
    valid = built.data.valid_transactions()
    count, total, customers, stores = query(
        built.dsn, "select count(*), sum(amount), count(distinct customer_id), count(distinct store_id) "
                   "from gold.fct_transactions")[0]
    assert count == len(valid) == 301
    assert total == sum((t.amount for t in valid.values() if t.amount is not None), Decimal(0))
    assert query(built.dsn, "select count(*) from gold.dim_customer")[0][0] == customers == 40
    assert query(built.dsn, "select count(*) from gold.dim_store")[0][0] == stores == 15
    gold_alerts = {r[0] for r in query(built.dsn, "select transaction_id from gold.fct_fraud_alerts")}
    assert gold_alerts == set(built.data.gold_alerts())
    assert "L000005" not in gold_alerts  # its transaction has not arrived yet
    assert "T000902" not in gold_alerts  # its transaction is invalid


def test_daily_fraud_matches_python(built: Built) -> None:
    expected = built.data.expected_daily()
    actual = daily_fraud(built.dsn)
    assert actual == expected
    assert len(actual) >= 3
    assert sum(d["fraud_truth_count"] for d in actual.values()) == 18  # i % 17 == 0 for i < 301


def test_hourly_sales_match_python(built: Built) -> None:
    expected = built.data.expected_hourly()
    rows = query(built.dsn, "select to_char(sales_hour at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:00:00+00:00'), "
                            "sum(transaction_count)::int, sum(total_amount) from gold.agg_hourly_sales "
                            "group by 1 order by 1")
    actual = {hour: (count, total) for hour, count, total in rows}
    assert actual == expected
    first_hours = sorted(expected)[:3]
    for hour in first_hours:  # a few hours spelled out, for the reader
        assert actual[hour] == expected[hour]
    assert expected[first_hours[0]][0] >= 1


def test_second_build_is_idempotent(built: Built) -> None:
    assert built.second.failures() == {}
    assert built.counts_after_second == built.counts_after_first


def test_bad_rows_are_flagged_not_loaded_and_reported(built: Built) -> None:
    expected = built.data.expected_invalid()
    rows = query(built.dsn, "select transaction_id, invalid_reason from silver.stg_transactions where not is_valid")
    flagged = {tid: reason.split(",") for tid, reason in rows}
    assert set(flagged) == set(expected)
    for tid, reason in expected.items():
        assert reason in flagged[tid], (tid, flagged[tid])
    in_gold = query(built.dsn, "select transaction_id from gold.fct_transactions where transaction_id = any(%s)",
                    (list(expected),))
    assert in_gold == []
    # Every bronze row is in silver, valid or flagged.
    assert query(built.dsn, "select count(*) from silver.stg_transactions")[0][0] == len(built.data.transactions)
    # The warn-severity test reports them, with the number of rows, and the build still passed.
    warned = {uid: r for uid, r in ((r["unique_id"], r) for r in built.first.results) if r["status"] == "warn"}
    invalid_test = [r for uid, r in warned.items() if "warn_invalid_bronze_transactions" in uid]
    assert len(invalid_test) == 1 and invalid_test[0]["failures"] == len(expected)
    assert any("warn_invalid_bronze_alerts" in uid for uid in warned)
    assert built.first.returncode == 0


def test_bad_alerts_are_flagged(built: Built) -> None:
    rows = dict(query(built.dsn, "select alert_id, invalid_reason from silver.stg_fraud_alerts where not is_valid"))
    assert rows == {"T000001": "fraud_score_out_of_range", "T000002": "missing_customer_id"}
    scores = query(built.dsn, "select min(fraud_score), max(fraud_score) from gold.fct_fraud_alerts")[0]
    assert 0 <= scores[0] <= scores[1] <= 1


@dataclass
class Incremental:
    everything: bronze_dataset.Dataset
    after_incremental: dict[str, list[tuple[Any, ...]]]
    after_full_refresh: dict[str, list[tuple[Any, ...]]]
    facts: dict[str, Decimal]  # transaction_id -> amount, after the incremental run
    alerts: set[str]  # alerted transaction_ids, after the incremental run
    daily: dict[str, dict[str, Any]]  # agg_daily_fraud, after the incremental run


def daily_fraud(dsn: str) -> dict[str, dict[str, Any]]:
    rows = query(dsn, "select fraud_date, transaction_count, total_amount, fraud_truth_count, alert_count, "
                      "true_positive_count from gold.agg_daily_fraud order by fraud_date")
    return {r[0].isoformat(): {"transaction_count": r[1], "total_amount": r[2], "fraud_truth_count": r[3],
                               "alert_count": r[4], "true_positive_count": r[5]} for r in rows}


@pytest.fixture(scope="module")
def incremental(built: Built) -> Incremental:
    """Late, updated and invalidated rows; an incremental build; then a full refresh."""
    everything, new_rows = bronze_dataset.late_batch(built.data)
    bronze_dataset.load(built.dsn, new_rows, truncate=False)
    run_dbt(["build"], dsn=built.dsn, work_dir=built.work_dir)
    relations = [f"silver.{t}" for t in SILVER_TABLES] + [f"gold.{t}" for t in GOLD_TABLES]
    after_incremental = {r: table_contents(built.dsn, r) for r in relations}
    facts = dict(query(built.dsn, "select transaction_id, amount from gold.fct_transactions"))
    alerts = {r[0] for r in query(built.dsn, "select transaction_id from gold.fct_fraud_alerts")}
    daily = daily_fraud(built.dsn)
    run_dbt(["build", "--full-refresh"], dsn=built.dsn, work_dir=built.work_dir)
    after_full_refresh = {r: table_contents(built.dsn, r) for r in relations}
    return Incremental(everything, after_incremental, after_full_refresh, facts, alerts, daily)


def test_incremental_run_equals_full_refresh(incremental: Incremental) -> None:
    assert incremental.after_incremental.keys() == incremental.after_full_refresh.keys()
    for relation, rows in incremental.after_full_refresh.items():
        assert incremental.after_incremental[relation] == rows, relation
    assert len(incremental.after_full_refresh["gold.fct_transactions"]) == len(incremental.facts) > 301


def test_incremental_run_picks_up_late_updated_and_invalidated_rows(incremental: Incremental) -> None:
    everything = incremental.everything
    assert incremental.facts == {tid: t.amount for tid, t in everything.valid_transactions().items()}
    assert incremental.facts["T000007"] == Decimal("777.77")  # upserted in bronze
    assert "T000008" not in incremental.facts  # overwritten by an invalid version
    assert incremental.alerts == set(everything.gold_alerts())
    assert {"L000005", "L000020", "T000011"} <= incremental.alerts  # L000005: alert came before its transaction
    assert incremental.daily == everything.expected_daily()
