"""bronze.sink_rejects is visible (issue 17): a row PostgreSQL refuses through a sink inbox shows on the
portal's figure and as a dbt `warn` (dbt_quality's staging group), and stops warning once it is older
than the test's window. Real trigger, real dbt, on a throwaway database of the stack's server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from streamflow import portal_status
from streamflow.dbt_runner import run_dbt
from streamflow.settings import Settings
from tests.integration.quality.scratch_warehouse import scratch_warehouse

pytestmark = pytest.mark.integration
WARN_TEST = "no_rows_newer_than"


@pytest.fixture(scope="module")
def rejects_db(stack: Settings) -> Iterator[Settings]:
    with scratch_warehouse(stack, "sf_rejects") as settings:
        yield settings


def refuse_a_row(settings: Settings) -> None:
    """What the transaction_processor's sink does with a payload PostgreSQL cannot hold as jsonb."""
    with psycopg.connect(settings.warehouse_dsn) as conn:
        conn.execute("INSERT INTO bronze.raw_transactions_inbox (transaction_id, payload, kafka_topic, "
                     "kafka_partition, kafka_offset, event_time) VALUES ('t-refused', '{\"amount\": Infinity}', "
                     "'transactions.raw', 0, 7, '2026-01-01T00:00:00Z')")


def sink_rejects_test_status(settings: Settings, target: Path) -> tuple[str, int | None]:
    results = run_dbt(settings, ["test", "--select", "path:models/staging,source:bronze_rejects"],
                      target_path=target, check=False, echo=False)
    found = [r for r in results.get("results", []) if WARN_TEST in r["unique_id"]]
    assert len(found) == 1, results.get("_output", "")[-3000:]
    assert results["_returncode"] == 0, results["_output"][-3000:]  # a warning never fails dbt_quality's task
    return str(found[0]["status"]), found[0].get("failures")


def test_refused_row_is_counted_and_warned(rejects_db: Settings, tmp_path: Path) -> None:
    assert portal_status.sink_rejects(rejects_db) == {
        "relation": "bronze.sink_rejects", "rows": 0, "by_table": {}, "newest": None, "age_s": None, "sqlstates": []}
    assert sink_rejects_test_status(rejects_db, tmp_path / "empty") == ("pass", 0)

    refuse_a_row(rejects_db)
    figure = portal_status.sink_rejects(rejects_db)
    assert figure is not None
    assert (figure["rows"], figure["by_table"], figure["sqlstates"]) == (1, {"bronze.raw_transactions": 1}, ["22P02"])
    with psycopg.connect(rejects_db.warehouse_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM bronze.raw_transactions").fetchone() == (0,)
    assert sink_rejects_test_status(rejects_db, tmp_path / "refused") == ("warn", 1)

    with psycopg.connect(rejects_db.warehouse_dsn) as conn:  # someone looked at it a day ago
        conn.execute("UPDATE bronze.sink_rejects SET last_rejected_at = now() - interval '25 hours'")
    assert sink_rejects_test_status(rejects_db, tmp_path / "old") == ("pass", 0)
    still = portal_status.sink_rejects(rejects_db)
    assert still is not None and still["rows"] == 1  # the portal keeps showing it until it is handled
