"""`dbt parse` of the project (no database needed): every model and column documented, sources carry
the streaming lineage in their meta, exposures exist, schemas are routed by folder, tests are plenty."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
PROJECT_DIR = REPO_ROOT / "dbt"
DBT = Path(os.environ.get("STREAMFLOW_DBT_EXECUTABLE_PATH") or REPO_ROOT / ".streamflow/venvs/dbt/bin/dbt")

MODELS = {
    "stg_transactions": "silver", "stg_fraud_alerts": "silver", "stg_realtime_metrics": "silver",
    "int_customer_stats": "silver", "dim_customer": "gold", "dim_store": "gold", "fct_transactions": "gold",
    "fct_fraud_alerts": "gold", "agg_hourly_sales": "gold", "agg_daily_fraud": "gold",
}
SOURCE_META = {
    "raw_transactions": {"kafka_topic": "transactions.raw", "flink_job": "transaction_processor",
                         "producer": "generator"},
    "raw_fraud_alerts": {"kafka_topic": "transactions.raw", "flink_job": "fraud_detector",
                         "output_topic": "fraud.alerts"},
    "realtime_metrics": {"kafka_topic": "transactions.raw", "flink_job": "realtime_aggregator",
                         "output_topic": "metrics.realtime"},
}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("dbt-parse")
    # Parsing never connects; the profile still needs its variables to render (any values do).
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "STREAMFLOW_WAREHOUSE_HOST": "127.0.0.1",
           "STREAMFLOW_WAREHOUSE_PORT": "5432", "STREAMFLOW_WAREHOUSE_USER": "parse",
           "STREAMFLOW_WAREHOUSE_DB": "warehouse",
           "STREAMFLOW_WAREHOUSE_PASSWORD": "unused"}  # pragma: allowlist secret
    shutil.copyfile(PROJECT_DIR / "profiles.yml", work / "profiles.yml")  # dbt writes .user.yml beside it
    proc = subprocess.run(
        [str(DBT), "parse", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(work),
         "--target-path", str(work / "target"), "--log-path", str(work / "logs"), "--no-partial-parse",
         "--warn-error-options", '{"error": ["Deprecations"]}'],
        env=env, cwd=work, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    data: dict[str, Any] = json.loads((work / "target" / "manifest.json").read_text())
    return data


def _models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def test_every_model_exists_in_its_layer_schema(manifest: dict[str, Any]) -> None:
    models = _models(manifest)
    assert {name: node["schema"] for name, node in models.items()} == MODELS


def test_every_model_and_column_is_described(manifest: dict[str, Any]) -> None:
    for name, node in _models(manifest).items():
        assert node["description"].strip(), f"{name} has no description"
        assert node["columns"], f"{name} documents no columns"
        undocumented = [c for c, col in node["columns"].items() if not col["description"].strip()]
        assert undocumented == [], f"{name}: {undocumented}"


def test_documented_columns_match_the_sql(manifest: dict[str, Any]) -> None:
    """Each model's yml lists exactly the columns its final select produces (checked by name in the SQL)."""
    for name, node in _models(manifest).items():
        sql = node["raw_code"]
        missing = [c for c in node["columns"] if c not in sql]
        assert missing == [], f"{name}: documented but not in the SQL: {missing}"


def test_sources_carry_streaming_lineage_and_freshness(manifest: dict[str, Any]) -> None:
    sources = {s["name"]: s for s in manifest["sources"].values() if s["source_name"] == "bronze"}
    assert set(sources) == set(SOURCE_META)
    for name, source in sources.items():
        assert source["meta"] == SOURCE_META[name], name
        assert source["description"].strip()
        assert source["loaded_at_field"], name
        freshness = source["freshness"]
        assert freshness["warn_after"]["count"] and freshness["error_after"]["count"], name
        assert all(col["description"].strip() for col in source["columns"].values()), name



def test_sink_rejects_is_a_source_with_a_warn_test_and_no_freshness(manifest: dict[str, Any]) -> None:
    """Issue 17: rows a bronze sink refused (bronze.sink_rejects) are visible to dbt_quality as a
    warning, and an empty table (the healthy state) is never "stale"."""
    source = manifest["sources"]["source.streamflow.bronze_rejects.sink_rejects"]
    assert (source["schema"], source["identifier"]) == ("bronze", "sink_rejects")
    # No threshold: `dbt source freshness` selects only sources with one (FreshnessThreshold.__bool__).
    assert not any((source["freshness"] or {}).get(k, {}).get("count") for k in ("warn_after", "error_after"))
    assert all(col["description"].strip() for col in source["columns"].values())
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"
             and source["unique_id"] in n["depends_on"]["nodes"]]
    assert [(t["test_metadata"]["name"], t["config"]["severity"].lower()) for t in tests] == \
        [("no_rows_newer_than", "warn")]
    assert tests[0]["test_metadata"]["kwargs"]["field"] == "last_rejected_at"
    # dbt_quality's staging group runs it (its selector is a path).
    assert tests[0]["original_file_path"].startswith("models/staging/")

def test_exposures_reach_gold(manifest: dict[str, Any]) -> None:
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(exposures) >= {"lineage_portal", "fraud_alerts_consumer"}
    assert "model.streamflow.fct_fraud_alerts" in exposures["fraud_alerts_consumer"]["depends_on"]["nodes"]
    assert "model.streamflow.fct_transactions" in exposures["lineage_portal"]["depends_on"]["nodes"]
    assert all(e["description"].strip() for e in exposures.values())


def test_enough_tests_of_every_kind(manifest: dict[str, Any]) -> None:
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    assert len(tests) >= 25
    generic = {t["test_metadata"]["name"] for t in tests if t.get("test_metadata")}
    assert generic >= {"unique", "not_null", "relationships", "accepted_values", "accepted_range",
                       "expression_is_true", "recency", "unique_combination_of_columns"}
    singular = {t["name"] for t in tests if not t.get("test_metadata")}
    assert singular >= {"assert_gold_amounts_positive", "assert_bronze_transactions_reconciled_in_silver",
                        "assert_alert_scores_in_unit_interval", "assert_no_future_timestamps"}
    warn = {t["name"] for t in tests if t["config"]["severity"].lower() == "warn"}
    assert "warn_invalid_bronze_transactions" in warn


def test_incremental_models_merge_on_an_indexed_natural_key(manifest: dict[str, Any]) -> None:
    models = _models(manifest)
    incremental = {n: m for n, m in models.items() if m["config"]["materialized"] == "incremental"}
    assert set(incremental) == {"stg_transactions", "stg_fraud_alerts", "fct_transactions", "fct_fraud_alerts"}
    for name, node in incremental.items():
        key = node["config"]["unique_key"]
        assert node["config"]["incremental_strategy"] == "merge", name
        unique_indexes = [i["columns"] for i in node["config"]["indexes"] if i.get("unique")]
        assert [key] in unique_indexes, name


def test_multi_parent_tests_run_with_their_most_downstream_parent(manifest: dict[str, Any]) -> None:
    """Cosmos builds one model per task: a test with several parents must have one parent that depends on
    all the others (so with --indirect-selection buildable it runs exactly once, in that model's task)."""
    parents_of = {uid: set(n["depends_on"]["nodes"]) for uid, n in manifest["nodes"].items()}

    def ancestors(uid: str) -> set[str]:
        seen: set[str] = set()
        stack = list(parents_of.get(uid, ()))
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(parents_of.get(node, ()))
        return seen

    for uid, node in manifest["nodes"].items():
        if node["resource_type"] != "test":
            continue
        models = {p for p in node["depends_on"]["nodes"] if p.startswith("model.")}
        if len(models) > 1:
            assert any(models - {m} <= ancestors(m) for m in models), f"{uid}: parents {sorted(models)}"
