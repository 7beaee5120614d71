"""DAG integrity in both runtimes: imports, owners, retries, tags, structure, no I/O at parse, parse time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from streamflow.catalog import flink_job_keys, layer_tables, load_manifest
from streamflow.settings import load_settings

REPO = Path(__file__).resolve().parents[3]
MANIFEST = load_settings().dbt_target_dir / "manifest.json"




@cache
def parsed(runtime: str, dbt_execution_mode: str = "watcher") -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update({"STREAMFLOW_RUNTIME": runtime, "STREAMFLOW_DBT_EXECUTION_MODE": dbt_execution_mode,
                "AIRFLOW_HOME": str(REPO / ".streamflow" / "airflow-parse-test"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
                "STREAMFLOW_K8S_IN_CLUSTER": "false"})
    if runtime == "kubernetes":  # what the Helm values provide from the cluster's services and secrets
        env.update({"STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS": "kafka.invalid:9092",
                    "STREAMFLOW_POSTGRES_PASSWORD": "from-a-secret"})  # pragma: allowlist secret
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("parse_dags.py")), str(REPO / "dags")],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


_TABLES = layer_tables(load_manifest(MANIFEST)) if MANIFEST.exists() else {"silver": [], "gold": []}
SILVER_MODELS, GOLD_MODELS = tuple(_TABLES["silver"]), tuple(_TABLES["gold"])  # from the manifest Cosmos reads


RUNTIMES = ["local", "kubernetes"]
EXPECTED_DAGS = {"bootstrap_pipeline", "dbt_quality", "dbt_transform"}


def test_manifest_exists_for_cosmos() -> None:
    assert MANIFEST.exists(), f"{MANIFEST} missing: `bin/streamflow prepare` (make setup) must produce it"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_dag_imports_without_errors(runtime: str) -> None:
    result = parsed(runtime)
    assert result["import_errors"] == {}
    assert set(result["dags"]) == EXPECTED_DAGS


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_owners_retries_tags(runtime: str) -> None:
    for dag_id, dag in parsed(runtime)["dags"].items():
        assert "streamflow" in dag["tags"], dag_id
        for task_id, task in dag["tasks"].items():
            assert task["owner"] == "streamflow", (dag_id, task_id)
            assert task["retries"] is not None, (dag_id, task_id)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_parse_time_per_file_is_under_a_second(runtime: str) -> None:
    for name, seconds in parsed(runtime)["parse_seconds"].items():
        assert seconds <= 1.0, f"{name} took {seconds:.2f} s to parse"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bootstrap_pipeline_structure(runtime: str) -> None:
    tasks = parsed(runtime)["dags"]["bootstrap_pipeline"]["tasks"]
    assert tasks["provision"]["upstream"] == ["preflight"]
    for job in flink_job_keys():
        assert tasks[f"deploy_{job}"]["upstream"] == ["provision"]
        assert tasks[f"wait_{job}_running"]["upstream"] == [f"deploy_{job}"]
    # the generator runs alongside the deploys (Kafka keeps its events); its range of offsets is noted
    # before and after; bronze is awaited once every job is healthy AND the range is known
    assert tasks["transactions_offsets_before"]["upstream"] == ["provision"]
    assert tasks["run_generator"]["upstream"] == ["transactions_offsets_before"]
    assert tasks["transactions_offsets_after"]["upstream"] == ["run_generator"]
    assert tasks["wait_for_bronze"]["upstream"] == sorted(
        ["transactions_offsets_after", *(f"wait_{job}_running" for job in flink_job_keys())])
    dbt = [t for t in tasks if t.startswith("dbt_models.")]
    assert SILVER_MODELS and GOLD_MODELS
    for model in SILVER_MODELS + GOLD_MODELS:  # one task per dbt model (Cosmos)
        assert any(f".{model}" in t for t in dbt), (model, dbt)
    roots = [t for t in dbt if not any(u.startswith("dbt_models.") for u in tasks[t]["upstream"])]
    assert roots and all(tasks[t]["upstream"] == ["wait_for_bronze"] for t in roots)
    assert all(t.startswith("dbt_models.") for t in tasks["publish_dbt_docs"]["upstream"])
    assert tasks["summary"]["upstream"] == ["publish_dbt_docs"]


def test_watcher_mode_runs_one_dbt_build_and_watches_each_model() -> None:
    """The default (watcher): one producer for silver + gold, a run and a test task per model in dbt's order."""
    for dag_id in ("bootstrap_pipeline", "dbt_transform"):
        tasks = parsed("local")["dags"][dag_id]["tasks"]
        assert tasks["dbt_models.dbt_producer_watcher"]["type"] == "DbtProducerWatcherOperator"
        assert [t for t in tasks if "producer_watcher" in t] == ["dbt_models.dbt_producer_watcher",
                                                                  "dbt_models.dbt_producer_watcher_done"]
        for model in SILVER_MODELS + GOLD_MODELS:
            assert tasks[f"dbt_models.{model}.run"]["type"] == "DbtRunWatcherOperator"
            assert tasks[f"dbt_models.{model}.test"]["upstream"] == [f"dbt_models.{model}.run"]
            assert tasks[f"dbt_models.{model}.test"]["type"] == "DbtTestWatcherOperator"
        # gold waits for silver's tests, as in dbt's own build order
        assert tasks["dbt_models.fct_transactions.run"]["upstream"] == [
            "dbt_models.dim_customer.test", "dbt_models.dim_store.test", "dbt_models.stg_transactions.test"]
    bootstrap = parsed("local")["dags"]["bootstrap_pipeline"]["tasks"]
    assert bootstrap["dbt_models.dbt_producer_watcher"]["upstream"] == ["wait_for_bronze"]
    assert "dbt_models.dbt_producer_watcher_done" in bootstrap["publish_dbt_docs"]["upstream"]


def test_dbt_transform_waits_for_a_bootstrapped_pipeline() -> None:
    """On a fresh stack the hourly run fires before bronze exists: every dbt task hangs below a
    ShortCircuit that skips the run (saying why) until the pipeline was bootstrapped, in both modes."""
    for mode in ("watcher", "local"):
        tasks = parsed("local", mode)["dags"]["dbt_transform"]["tasks"]
        assert tasks["pipeline_bootstrapped"]["type"] == "ShortCircuitOperator"
        assert tasks["pipeline_bootstrapped"]["upstream"] == []
        roots = [t for t, spec in tasks.items() if not spec["upstream"]]
        assert roots == ["pipeline_bootstrapped"], (mode, roots)


def test_local_mode_runs_one_dbt_build_per_model_silver_then_gold() -> None:
    """STREAMFLOW_DBT_EXECUTION_MODE=local: a `dbt build` task per model (model + its tests), no producer."""
    parse = parsed("local", "local")
    assert not parse["import_errors"]
    tasks = parse["dags"]["bootstrap_pipeline"]["tasks"]
    assert not [t for t in tasks if "producer" in t]
    for model in SILVER_MODELS:
        assert tasks[f"dbt_staging.{model}_model_build"]["type"] == "DbtBuildLocalOperator"
    for model in GOLD_MODELS:
        assert tasks[f"dbt_marts.{model}_model_build"]["type"] == "DbtBuildLocalOperator"
    gold_roots = [t for t in tasks if t.startswith("dbt_marts.")
                  and not any(u.startswith("dbt_marts.") for u in tasks[t]["upstream"])]
    assert gold_roots and all(all(u.startswith("dbt_staging.") for u in tasks[t]["upstream"]) for t in gold_roots)


def test_runtime_picks_the_operators() -> None:
    local = parsed("local")["dags"]["bootstrap_pipeline"]["tasks"]
    k8s = parsed("kubernetes")["dags"]["bootstrap_pipeline"]["tasks"]
    assert local["deploy_fraud_detector"]["type"] == "PythonOperator"
    assert local["run_generator"]["type"] == "PythonOperator"
    assert k8s["deploy_fraud_detector"]["type"] == "FlinkDeploymentApplyOperator"
    assert k8s["wait_fraud_detector_running"]["type"] == "FlinkDeploymentRunningSensor"
    # healthy = two of the spec's checkpoint intervals (60 s) without a restart (ADR 0010)
    assert k8s["wait_fraud_detector_running"]["attrs"]["stable_window_s"] == "120.0"
    assert k8s["wait_fraud_detector_running"]["attrs"]["deploy_task_id"] == "deploy_fraud_detector"
    assert k8s["run_generator"]["type"] == "KubernetesPodOperator"
    assert "--total-events" in k8s["run_generator"]["attrs"]["arguments"]
    applied = json.loads(k8s["deploy_fraud_detector"]["attrs"]["application_file"])
    assert applied["kind"] == "FlinkDeployment" and applied["metadata"]["name"] == "fraud-detector"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_quality_dag_runs_every_15_minutes_with_a_task_per_group(runtime: str) -> None:
    dag = parsed(runtime)["dags"]["dbt_quality"]
    assert "*/15 * * * *" in dag["schedule"]
    assert set(dag["tasks"]) == {"pipeline_bootstrapped", "source_freshness", "test_staging",
                                 "test_intermediate", "test_marts"}
