"""dbt_transform — hourly incremental build of silver and gold (Cosmos, one task per model).

On a fresh stack the hourly schedule fires at once, before ``bootstrap_pipeline`` has created bronze:
the first task then skips the run (visibly, saying why) instead of failing every model on a missing
relation. After a bootstrap, or with gold in the warehouse, it always builds; an unreachable warehouse
fails it (red), never skips it.
"""

from __future__ import annotations

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import DAG

from streamflow import quality
from streamflow.dag_defaults import START_DATE, default_args
from streamflow.dbt_cosmos import dbt_layers
from streamflow.settings import get_settings

settings = get_settings()

with DAG(
    dag_id="dbt_transform",
    description="Incremental dbt build: staging/intermediate (silver) then marts (gold)",
    schedule="@hourly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["streamflow", "dbt"],
    doc_md=__doc__,
) as dag:
    bootstrapped = ShortCircuitOperator(task_id="pipeline_bootstrapped", python_callable=quality.pipeline_bootstrapped)
    bootstrapped >> dbt_layers(settings)[0]  # silver then gold (one group in watcher mode, two in local mode)
