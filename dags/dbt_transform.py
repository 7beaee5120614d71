"""dbt_transform — hourly incremental build of silver and gold (Cosmos, one task per model)."""

from __future__ import annotations

from airflow.sdk import DAG

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
    dbt_layers(settings)  # silver then gold (one group in watcher mode, two in local mode)
