"""The whole pipeline through Airflow on the real local stack (local runtime).

Triggers bootstrap_pipeline through Airflow's REST API, waits for success, and checks what a user
would: gold tables populated, one Airflow task per dbt model, dbt_quality green. Then re-runs it
three times - once with the Airflow scheduler SIGKILLed mid-run and restarted - and every run succeeds
without duplicating a row (idempotence end to end).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from streamflow.airflow_client import AirflowClient, follow_run
from streamflow.catalog import flink_job_keys, layer_tables, load_manifest, manifest_path
from streamflow.pipeline import RunRange, account_run, row_counts
from streamflow.settings import Settings
from streamflow.stack import supervisor

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]



def _models(settings: Settings) -> dict[str, list[str]]:
    """The dbt models per layer, from the manifest the DAG renders from (streamflow.catalog)."""
    return layer_tables(load_manifest(manifest_path(settings)))


@pytest.fixture(scope="module")
def client(airflow_stack: Settings) -> AirflowClient:
    """The Airflow API client, once the DAGs can render: the session's fresh test stack has no dbt
    manifest yet, so it is made the way set-up makes it (`streamflow prepare`); the dag-processor
    picks the DAGs up on its next pass."""
    if not (airflow_stack.dbt_target_dir / "manifest.json").exists():
        subprocess.run([str(REPO_ROOT / "bin" / "streamflow"), "prepare"], check=True, timeout=600)
    return AirflowClient.from_settings(airflow_stack)


@pytest.fixture(scope="module")
def first_run(client: AirflowClient, airflow_stack: Settings) -> dict[str, Any]:
    began = time.monotonic()
    run_id = client.trigger("bootstrap_pipeline")
    state = follow_run(client, "bootstrap_pipeline", run_id, timeout_s=2700)  # cold, on a shared 2-core host
    return {"run_id": run_id, "state": state, "seconds": time.monotonic() - began,
            "tasks": client.task_instances("bootstrap_pipeline", run_id), "counts": row_counts(airflow_stack)}


def _duplicates(settings: Settings) -> dict[str, int]:
    with psycopg.connect(settings.warehouse_dsn) as conn:
        checks = {
            "bronze": "SELECT count(*) - count(DISTINCT transaction_id) FROM bronze.raw_transactions",
            "silver": "SELECT count(*) - count(DISTINCT transaction_id) FROM silver.stg_transactions",
            "gold": "SELECT count(*) - count(DISTINCT transaction_id) FROM gold.fct_transactions",
            "alerts": "SELECT count(*) - count(DISTINCT alert_id) FROM bronze.raw_fraud_alerts",
        }
        return {name: int(conn.execute(sql).fetchone()[0]) for name, sql in checks.items()}  # type: ignore[index]


def test_bootstrap_pipeline_succeeds(first_run: dict[str, Any]) -> None:
    failed = [t["task_id"] for t in first_run["tasks"] if t["state"] not in ("success", "skipped")]
    assert first_run["state"] == "success", f"failed tasks: {failed}"


def test_gold_is_populated(first_run: dict[str, Any], airflow_stack: Settings) -> None:
    counts = row_counts(airflow_stack)
    assert counts["bronze"]["raw_transactions"] >= airflow_stack.generator_events
    gold = _models(airflow_stack)["gold"]
    assert gold
    for table in gold:
        assert (counts["gold"][table] or 0) > 0, (table, counts["gold"])
    assert counts["gold"]["fct_transactions"] == counts["silver"]["stg_transactions"] or \
        counts["gold"]["fct_transactions"] > 0


def _xcom(client: AirflowClient, run_id: str, task_id: str) -> Any:
    entry = client.get(f"/api/v2/dags/bootstrap_pipeline/dagRuns/{run_id}/taskInstances/{task_id}"
                       "/xcomEntries/return_value?deserialize=true")
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) else value


def test_wait_for_bronze_waited_for_this_runs_events(first_run: dict[str, Any], client: AirflowClient,
                                                     airflow_stack: Settings) -> None:
    """ADR 0010: the range the generator wrote holds exactly its events, and every one of them is in bronze
    (its partition/offset, ingested during the run) or in the DLQ, not merely "enough rows"."""
    run = RunRange.from_xcom(_xcom(client, first_run["run_id"], "transactions_offsets_after"))
    assert run.records == airflow_stack.generator_events
    account = account_run(airflow_stack, run)
    assert account.complete, account.missing_text()
    assert sum(account.bronze.values()) > 0 and account.accounted == run.records
    for job in flink_job_keys():  # the deploy tasks ran against jobs that then proved healthy
        deployed = _xcom(client, first_run["run_id"], f"deploy_{job}")
        assert deployed["job_id"], deployed


TOPIC_FIELDS = ("topic_transactions", "topic_alerts", "topic_metrics", "topic_dlq")


def test_the_run_flowed_through_the_renamed_topics(first_run: dict[str, Any], airflow_stack: Settings) -> None:
    """Issue 16: the suite renames every topic (tests/stack_isolation.SESSION_TOPICS), so this run is the
    renamed-topic run: bronze came from the renamed input topic only, and no default name (the one written in
    k8s/base and the generator's pod template) exists on the broker - nothing produced to or read from it."""
    from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

    defaults = {field: str(Settings.model_fields[field].default) for field in TOPIC_FIELDS}
    bound = {field: str(getattr(airflow_stack, field)) for field in TOPIC_FIELDS}
    assert all(bound[f] != defaults[f] for f in TOPIC_FIELDS), ("the suite must rename every topic", bound)
    with psycopg.connect(airflow_stack.warehouse_dsn) as conn:
        topics = {r[0] for r in conn.execute("SELECT DISTINCT kafka_topic FROM bronze.raw_transactions")}
    assert topics == {bound["topic_transactions"]}
    existing = set(AdminClient({"bootstrap.servers": airflow_stack.kafka_bootstrap}).list_topics(timeout=30).topics)
    assert set(bound.values()) <= existing
    assert not set(defaults.values()) & existing, "something used a topic name written in the specs"


def test_one_task_per_dbt_model(first_run: dict[str, Any], airflow_stack: Settings) -> None:
    ids = {t["task_id"] for t in first_run["tasks"]}
    models = _models(airflow_stack)
    assert models["silver"] and models["gold"]
    for model in models["silver"] + models["gold"]:
        assert any(i.startswith("dbt_") and f".{model}" in i for i in ids), model


def test_docs_published(first_run: dict[str, Any], airflow_stack: Settings) -> None:
    for name in ("index.html", "manifest.json", "catalog.json"):
        assert (airflow_stack.dbt_docs_dir / name).stat().st_size > 0


def test_dbt_quality_runs_green(first_run: dict[str, Any], client: AirflowClient, airflow_stack: Settings) -> None:
    run_id = client.trigger("dbt_quality")
    assert follow_run(client, "dbt_quality", run_id, timeout_s=600) == "success"
    with psycopg.connect(airflow_stack.warehouse_dsn) as conn:
        rows = conn.execute("SELECT count(*), count(*) FILTER (WHERE status IN ('fail','error')) "
                            "FROM quality.dbt_test_results WHERE dag_run_id = %s", (run_id,)).fetchone()
    assert rows is not None and rows[0] >= 25 and rows[1] == 0


def test_scheduler_killed_mid_run_the_run_completes(first_run: dict[str, Any], client: AirflowClient,
                                                    airflow_stack: Settings, output_dir: Path) -> None:
    """Re-run 1 of 3: SIGKILL the scheduler while a task runs, start it again; the run still succeeds."""
    run_id = client.trigger("bootstrap_pipeline")
    deadline = time.monotonic() + 300
    running: list[str] = []
    while time.monotonic() < deadline and not running:
        # a dbt model task: long enough to be caught running, and retried (preflight is not, on purpose)
        running = [t["task_id"] for t in client.task_instances("bootstrap_pipeline", run_id)
                   if t.get("state") == "running" and t["task_id"].startswith("dbt_")]
        time.sleep(1)
    assert running, "no dbt task of the run started within 300 s"
    scheduler = supervisor.select(airflow_stack, ["airflow-scheduler"], with_deps=False)[0]
    pid = scheduler.pid_file.alive_pid()
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)  # the scheduler and all its processes, as when its pod dies
    killed_at = time.monotonic()
    time.sleep(5)
    supervisor.up(airflow_stack, ["airflow-scheduler"])
    back_at = time.monotonic()
    state = follow_run(client, "bootstrap_pipeline", run_id, timeout_s=1200)
    finished_at = time.monotonic()
    figure = {"fault": "airflow scheduler SIGKILL during bootstrap_pipeline", "running_tasks": running,
              "downtime_s": round(back_at - killed_at, 1),
              "run_finished_after_restart_s": round(finished_at - back_at, 1),
              "final_state": state}
    (output_dir / "reliability-scheduler.json").write_text(json.dumps(figure, indent=2) + "\n")
    assert state == "success", figure


def test_rerunning_never_duplicates(first_run: dict[str, Any], client: AirflowClient,
                                   airflow_stack: Settings) -> None:
    """Re-runs 2 and 3; after all three re-runs nothing grew and nothing is duplicated."""
    before = first_run["counts"]
    for _ in range(2):
        run_id = client.trigger("bootstrap_pipeline")
        assert follow_run(client, "bootstrap_pipeline", run_id, timeout_s=1200) == "success"
    after = row_counts(airflow_stack)
    assert _duplicates(airflow_stack) == {"bronze": 0, "silver": 0, "gold": 0, "alerts": 0}
    # Same seed, same events: re-runs upsert the same keys, so counts do not grow.
    assert after["bronze"]["raw_transactions"] == before["bronze"]["raw_transactions"]
    assert after["gold"]["fct_transactions"] == before["gold"]["fct_transactions"]


def test_warm_up_resumes_the_jobs_instead_of_bootstrapping(first_run: dict[str, Any], client: AirflowClient,
                                                           airflow_stack: Settings) -> None:
    """A warm `make up` (ADR 0014): with the Flink cluster stopped as `make down` stops it, `streamflow up
    --resume` resubmits every job from a retained checkpoint (Flink reports the restore) and returns only
    once each is healthy by the sensors' rule; `bootstrap --if-needed` then triggers no new run."""
    from streamflow.flink_spec import spec_for
    from streamflow.ops.resume import MetadataDbRuns
    from streamflow.runtime import flink_local
    from streamflow.runtime.flink_local_rest import job_rest_documents
    from streamflow.runtime.health import job_health

    assert first_run["state"] == "success"
    # The early decision reads Airflow's metadata DB; it must see what the API sees.
    from_api = client.latest_run("bootstrap_pipeline")
    from_db = MetadataDbRuns(airflow_stack).latest_run("bootstrap_pipeline")
    assert from_api and from_db and (from_db["dag_run_id"], from_db["state"]) == (from_api["dag_run_id"], "success")
    runs_before = client.get("/api/v2/dags/bootstrap_pipeline/dagRuns?limit=100")["total_entries"]
    ids_before = {job: job_health(job, airflow_stack).job_id for job in flink_job_keys()}
    assert flink_local.stop_all(airflow_stack), "the Flink cluster was not running"  # what `make down` does
    assert {job_health(job, airflow_stack).state for job in flink_job_keys()} == {"CLUSTER_DOWN"}

    streamflow = str(REPO_ROOT / "bin" / "streamflow")
    up = subprocess.run([streamflow, "up", "--resume"], capture_output=True, text=True, timeout=900, check=False)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert "resuming the Flink jobs; Airflow starts once they are submitted" in up.stdout, up.stdout
    assert "Flink jobs resumed and healthy" in up.stdout, up.stdout
    for job in flink_job_keys():
        health = job_health(job, airflow_stack)
        assert health.healthy, health.reason
        assert health.job_id != ids_before[job]  # resubmitted, not an old reading
        documents = job_rest_documents(spec_for(job), airflow_stack)
        assert documents is not None
        restored = (documents.get("checkpoints") or {}).get("latest", {}).get("restored")
        assert restored and restored.get("external_path"), f"{job} did not restore from a checkpoint: {restored}"

    again = subprocess.run([streamflow, "bootstrap", "--if-needed"], capture_output=True, text=True, timeout=900,
                           check=False)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "already bootstrapped" in again.stdout and "pipeline up in" in again.stdout, again.stdout
    assert client.get("/api/v2/dags/bootstrap_pipeline/dagRuns?limit=100")["total_entries"] == runs_before
