"""dbt_quality's tasks with the real dbt against a real PostgreSQL: a bronze source whose ingestion
stopped fails source_freshness (an error, not a warning), fresh bronze passes, and dbt failing to
connect fails the tasks instead of recording zero checks.

The tests own a throwaway database on the stack's server (migrations applied, bronze loaded from
tests/integration/dbt/bronze_dataset.py), so the stack's warehouse is left alone.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from streamflow import quality
from streamflow.settings import Settings
from tests.integration.dbt import bronze_dataset
from tests.integration.quality.scratch_warehouse import scratch_warehouse, with_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def quality_db(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with scratch_warehouse(stack, "sf_quality", dbt_artifacts_dir=str(tmp_path_factory.mktemp("dbt"))) as settings:
        yield settings


def load_bronze(settings: Settings, ingested_ago: str) -> None:
    """The dbt tests' bronze set, plus one metrics window, all last written ``ingested_ago`` ago."""
    bronze_dataset.load(settings.warehouse_dsn, bronze_dataset.initial(), truncate=True, ingested_ago=ingested_ago)
    with psycopg.connect(settings.warehouse_dsn) as conn:
        conn.execute("TRUNCATE bronze.realtime_metrics")
        conn.execute("INSERT INTO bronze.realtime_metrics (window_start, window_end, store_id, txn_count, "
                     "amount_sum, updated_at) VALUES (date_trunc('minute', now()), date_trunc('minute', now()) "
                     "+ interval '1 minute', '__all__', 1, 1.00, now() - %s::interval)", (ingested_ago,))


def statuses(settings: Settings, run_id: str) -> dict[str, str]:
    with psycopg.connect(settings.warehouse_dsn) as conn:
        rows = conn.execute("SELECT unique_id, status FROM quality.dbt_test_results WHERE dag_run_id = %s",
                            (run_id,)).fetchall()
    return {str(uid): str(status) for uid, status in rows}


def test_freshness_is_red_when_bronze_ingestion_stopped(quality_db: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quality, "get_settings", lambda: quality_db)
    load_bronze(quality_db, ingested_ago="2 hours")
    with pytest.raises(quality.QualityFailure, match="failed in freshness"):
        quality.source_freshness(run_id="stopped")
    recorded = statuses(quality_db, "stopped")
    assert recorded["source.streamflow.bronze.raw_transactions"] == "error"  # error, not warn: the task fails
    assert set(recorded.values()) == {"error"}


def test_freshness_passes_while_bronze_is_fresh(quality_db: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quality, "get_settings", lambda: quality_db)
    load_bronze(quality_db, ingested_ago="1 minute")
    summary = quality.source_freshness(run_id="flowing")
    assert summary == {"group": "freshness", "total": 3, "failed": 0, "warned": 0}
    assert set(statuses(quality_db, "flowing").values()) == {"pass"}


def test_dbt_with_a_wrong_password_fails_the_tasks(quality_db: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = with_settings(quality_db, postgres_password="not-the-password")
    monkeypatch.setattr(quality, "get_settings", lambda: wrong)
    with pytest.raises(quality.DbtDidNotCheck, match="password authentication failed"):
        quality.source_freshness(run_id="bad-password")
    # A previous run's results in the target must not stand in for this run's.
    old = wrong.dbt_artifacts / "quality" / "staging" / "run_results.json"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_text(json.dumps({"metadata": {"generated_at": "2026-01-01T00:00:00Z"},
                               "results": [{"unique_id": "test.streamflow.x.1", "status": "pass"}]}))
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    with pytest.raises(quality.DbtDidNotCheck, match="password authentication failed"):
        quality.run_tests("staging", run_id="bad-password")
    assert not Path(old).exists() or Path(old).stat().st_mtime > hour_ago + 1  # never read as this run's
