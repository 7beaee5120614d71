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


# ---- the dbt_quality DAG: when it runs next, and what its latest runs did ----------------------------
QUALITY_DAG = "dbt_quality"
GATE_TASK = "pipeline_bootstrapped"  # dags/dbt_quality.py: the ShortCircuitOperator before the checks
QUALITY_RUNS = 5


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def describe_run(run: dict[str, Any], task_states: dict[str, str | None]) -> dict[str, Any]:
    """One dbt_quality run for people: its state, and *why* when its checks did not run.

    A run whose gate succeeded while every check was skipped is green in Airflow's grid but checked
    nothing: the pipeline was never bootstrapped. That is said in words, not left to a colour."""
    checks = {t: s for t, s in task_states.items() if t != GATE_TASK}
    verdict = str(run.get("state") or "none")
    note = ""
    if task_states.get(GATE_TASK) == "success" and checks and all(s == "skipped" for s in checks.values()):
        verdict = "skipped"
        note = "pipeline never bootstrapped: no checks ran (trigger bootstrap_pipeline)"
    elif task_states.get(GATE_TASK) == "failed":
        note = "pipeline_bootstrapped failed (warehouse unreachable, or the task could not start): see its log"
    failed = sorted(t for t, s in checks.items() if s in ("failed", "upstream_failed"))
    if failed and not note:
        note = "failed: " + ", ".join(failed)
    return {
        "run_id": run["run_id"], "state": run.get("state"), "verdict": verdict, "note": note,
        "run_type": str(run.get("run_type") or ""), "run_after": _iso(run.get("run_after")),
        "start_date": _iso(run.get("start_date")), "end_date": _iso(run.get("end_date")),
        "tasks": task_states, "url": "dags/{}/runs/{}".format(*(quote(p, safe=_URL_SAFE) for p in
                                                                   (str(run["dag_id"]), str(run["run_id"])))),
    }


def quality_dag_status(dag_id: str = QUALITY_DAG, runs: int = QUALITY_RUNS) -> dict[str, Any]:
    """Schedule and latest runs of dbt_quality from Airflow's metadata DB (api-server process only):
    whether the DAG is parsed and paused, when its next run is due, and its last ``runs`` runs."""
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dag = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))
        if dag is None:
            return {"dag_id": dag_id, "known": False, "runs": [],
                    "note": f"{dag_id} is not parsed yet: check the dag-processor log for import errors"}
        recent = session.execute(
            select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.run_type, DagRun.run_after,
                   DagRun.start_date, DagRun.end_date)
            .where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc()).limit(runs)
        ).all()
        states: dict[str, dict[str, str | None]] = {}
        if recent:
            for ti in session.execute(
                select(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.state)
                .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_([r.run_id for r in recent]))
            ):
                states.setdefault(ti.run_id, {})[ti.task_id] = str(ti.state) if ti.state else None
        return {
            "dag_id": dag_id, "known": True, "paused": bool(dag.is_paused), "stale": bool(dag.is_stale),
            "schedule": dag.timetable_summary,
            "next_run_after": _iso(dag.next_dagrun_create_after),
            "runs": [describe_run(dict(r._mapping), states.get(r.run_id, {})) for r in recent],
            "trigger_path": f"api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
        }
