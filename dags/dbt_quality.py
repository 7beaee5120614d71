"""dbt_quality — every 15 minutes: source freshness and all dbt tests, one task per test group.

Results are kept in quality.dbt_test_results (the lineage portal charts them); a failing check
records an alert in quality.alerts and posts it to STREAMFLOW_ALERT_WEBHOOK_URL when configured.
A task is green only when dbt checked something in this run and nothing failed: dbt erroring
(bad credentials), missing or stale results files and a stale bronze source (ingestion stopped)
all fail it. The checks are skipped only while the pipeline was never bootstrapped; the
``pipeline_bootstrapped`` task's log and the Data Quality page say so.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.python import PythonOperator, ShortCircuitOperator
from airflow.sdk import DAG

from streamflow import quality
from streamflow.dag_defaults import START_DATE, default_args
from streamflow.settings import get_settings

settings = get_settings()

with DAG(
    dag_id="dbt_quality",
    description="dbt source freshness + dbt tests per group; results kept, failures alerted",
    schedule=settings.quality_schedule,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=14),
    default_args=default_args(retries=0, on_failure_callback=quality.record_failure_alert),
    tags=["streamflow", "quality", "dbt"],
    doc_md=__doc__,
) as dag:
    bootstrapped = ShortCircuitOperator(task_id="pipeline_bootstrapped",
                                        python_callable=quality.pipeline_bootstrapped)
    freshness = PythonOperator(task_id="source_freshness", python_callable=quality.source_freshness)
    bootstrapped >> freshness
    for group in quality.TEST_GROUPS:
        freshness >> PythonOperator(
            task_id=f"test_{group}", python_callable=quality.run_tests, op_kwargs={"group": group},
            trigger_rule="all_done",
        )
