"""bootstrap_pipeline — bring the whole platform to life, idempotently (manual trigger).

preflight → provision (topics + bronze migrations) → deploy the three Flink jobs and wait until they
are healthy (stable, checkpointing), and meanwhile launch the generator (bounded: Kafka keeps its events
until the jobs read them from their committed offsets) → wait for this run's events in bronze → dbt
silver → gold (Cosmos, a task per model) → publish dbt docs for the lineage portal → summary.
The runtime (local processes or Kubernetes) comes from STREAMFLOW_RUNTIME; this file never changes.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import DAG, Asset

from streamflow import pipeline
from streamflow.catalog import flink_job_keys
from streamflow.dag_defaults import START_DATE, default_args
from streamflow.dbt_cosmos import dbt_layers
from streamflow.runtime import runtime_for
from streamflow.settings import get_settings

settings = get_settings()
runtime = runtime_for(settings)
BRONZE = Asset("bronze.raw_transactions")
GOLD = Asset("gold.marts")

with DAG(
    dag_id="bootstrap_pipeline",
    description="Provision, deploy Flink jobs, generate data, build silver and gold, publish lineage",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["streamflow", "bootstrap", settings.runtime.value],
    doc_md=__doc__,
) as dag:
    preflight = PythonOperator(task_id="preflight", python_callable=pipeline.preflight, retries=0)
    provision = PythonOperator(task_id="provision", python_callable=pipeline.provision)

    jobs_running = []
    for job in flink_job_keys():
        deploy, running = runtime.flink_job(job)
        provision >> deploy
        jobs_running.append(running)

    # This run's events are the offsets the generator adds to transactions.raw: noted right before and
    # right after it, then wait_for_bronze waits for exactly those (old rows never count; ADR 0010).
    offsets_before = PythonOperator(task_id="transactions_offsets_before",
                                    python_callable=pipeline.transactions_offsets_before)
    generator = runtime.generator()
    offsets_after = PythonOperator(task_id="transactions_offsets_after",
                                   python_callable=pipeline.transactions_offsets_after)
    wait_for_bronze = PythonSensor(
        task_id="wait_for_bronze",
        python_callable=pipeline.bronze_ready,
        poke_interval=5,
        timeout=settings.bronze_wait_timeout_s + 120,  # backstop: bronze_ready raises first, naming what is missing
        mode="poke",
        outlets=[BRONZE],
    )
    dbt_groups = dbt_layers(settings)  # Cosmos: one Airflow task per model (and its tests), silver then gold
    publish_docs = PythonOperator(task_id="publish_dbt_docs", python_callable=pipeline.publish_docs,
                                  outlets=[GOLD])
    summary = PythonOperator(task_id="summary", python_callable=pipeline.summarize,
                             execution_timeout=timedelta(minutes=5))

    preflight >> provision
    # The generator does not wait for the jobs: its events wait in Kafka (the jobs start from their
    # committed offsets, or the earliest on a first start), so generating overlaps the deploys. Bronze is
    # awaited only once every job is healthy and the run's range is known.
    provision >> offsets_before >> generator >> offsets_after
    [*jobs_running, offsets_after] >> wait_for_bronze >> dbt_groups[0]
    dbt_groups[-1] >> publish_docs >> summary
