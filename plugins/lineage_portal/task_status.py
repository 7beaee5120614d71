"""Last dbt result per model, read from Airflow's metadata DB.

The portal runs inside the api-server, which already holds a database session factory, so it reads
task instances through Airflow's ORM instead of calling its own REST API. Cosmos runs one task per
model (``dbt_staging.stg_transactions_model_build``); ``streamflow.lineage.dbt_name_from_task_id``
maps a task back to its model.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from streamflow.lineage import dbt_name_from_task_id, task_step

DBT_DAGS = ("bootstrap_pipeline", "dbt_transform")
RUNS_PER_DAG = 5


# Run ids look like `scheduled__2026-11-22T08:00:00+00:00`: Airflow's router wants ':' and '+' as they
# are (percent-encoded, the task page finds no task instance); only path-breaking characters are encoded.
_URL_SAFE = ":+@=,"


def task_url(dag_id: str, run_id: str, task_id: str) -> str:
    """The task instance page of Airflow's UI, relative to Airflow's base URL."""
    parts = (quote(p, safe=_URL_SAFE) for p in (dag_id, run_id, task_id))
    return "dags/{}/runs/{}/tasks/{}".format(*parts)


def _when(row: dict[str, Any]) -> datetime | None:
    return row.get("end_date") or row.get("start_date")


def pick_latest(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Most recent task instance per dbt model name, preferring ones that started over unscheduled ones."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = dbt_name_from_task_id(str(row["task_id"]))
        if name is None:
            continue
        current = best.get(name)
        if current is None or _newer(row, current):
            best[name] = row
    return {
        name: {
            "state": row.get("state") or "none",
            "dag_id": row["dag_id"],
            "run_id": row["run_id"],
            "task_id": row["task_id"],
            "step": task_step(str(row["task_id"])),
            "start_date": row["start_date"].isoformat() if row.get("start_date") else None,
            "end_date": row["end_date"].isoformat() if row.get("end_date") else None,
            "try_number": row.get("try_number"),
            "url": task_url(str(row["dag_id"]), str(row["run_id"]), str(row["task_id"])),
        }
        for name, row in best.items()
    }


def _newer(row: dict[str, Any], current: dict[str, Any]) -> bool:
    a, b = _when(row), _when(current)
    if a is None:
        return False
    return b is None or a > b


def dbt_task_rows(dag_ids: Iterable[str] = DBT_DAGS, runs_per_dag: int = RUNS_PER_DAG) -> list[dict[str, Any]]:
    """Task instances of the latest DAG runs of the dbt DAGs (Airflow ORM, api-server process only)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    rows: list[dict[str, Any]] = []
    with create_session() as session:
        for dag_id in dag_ids:
            run_ids = session.scalars(
                select(DagRun.run_id).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc())
                .limit(runs_per_dag)
            ).all()
            if not run_ids:
                continue
            result = session.execute(
                select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id, TaskInstance.state,
                       TaskInstance.start_date, TaskInstance.end_date, TaskInstance.try_number)
                .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(run_ids))
            )
            rows.extend(dict(r._mapping) for r in result)
    return rows


def latest_dbt_results() -> dict[str, dict[str, Any]]:
    return pick_latest(dbt_task_rows())
