"""A warm `make up`: bring back a pipeline this state folder already bootstrapped, instead of bootstrapping it again.

`make up` promises a running pipeline with a populated gold layer. On a fresh state folder that takes
`bootstrap_pipeline` (topics, deploys, 50,000 generated events, dbt). After `make down` the warehouse,
Kafka's log and every job's retained checkpoints are still there: what is missing is only the running
Flink jobs. Running the whole bootstrap again would add another 50,000 events and take minutes (ADR 0014).
So ``streamflow bootstrap --if-needed`` asks two questions, both of which can say no:

* did the latest ``bootstrap_pipeline`` run of this stack succeed (Airflow's own record)?
* does the gold layer hold rows (``gold.fct_transactions``)?

Only when both say yes, the jobs are resumed through the runtime the DAG's deploy tasks use
(:func:`streamflow.runtime.flink_local.deploy_all`: each from its latest retained checkpoint, as the
operator's ``last-state`` upgrade does) and each is then watched until it is healthy by the DAG
sensors' own rule (RUNNING, no restart within the stable window, a checkpoint completed since it
started): a job that restores and then fails is reported, not resumed. Otherwise `bootstrap_pipeline`
is triggered as on a fresh state folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import sql

from streamflow.flink_health import JobHealth, default_stable_window_s
from streamflow.settings import Runtime, Settings

DAG_ID = "bootstrap_pipeline"
GOLD_TABLE = "gold.fct_transactions"


class RunReader(Protocol):
    """What is read of Airflow (:class:`streamflow.airflow_client.AirflowClient` is one)."""

    def latest_run(self, dag_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class PreviousBootstrap:
    """What says this state folder's pipeline was bootstrapped (or why it was not)."""

    done: bool
    reason: str
    run_id: str | None = None
    gold_rows: int = 0


def gold_rows(settings: Settings) -> int | None:
    """Rows in the gold fact table; None when it does not exist yet."""
    with psycopg.connect(settings.warehouse_dsn, connect_timeout=10) as conn:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (GOLD_TABLE,)).fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*GOLD_TABLE.split(".")))).fetchone()
        return int(row[0]) if row else 0


def previous_bootstrap(settings: Settings, client: RunReader) -> PreviousBootstrap:
    """Whether this stack's pipeline was bootstrapped: its latest run succeeded and gold holds rows."""
    run = client.latest_run(DAG_ID)
    if run is None:
        return PreviousBootstrap(False, f"{DAG_ID} never ran on this stack")
    run_id, state = str(run.get("dag_run_id")), str(run.get("state"))
    if state != "success":
        return PreviousBootstrap(False, f"the latest {DAG_ID} run {run_id} is {state}, not success", run_id)
    rows = gold_rows(settings)
    if not rows:
        what = "does not exist" if rows is None else "is empty"
        return PreviousBootstrap(False, f"{GOLD_TABLE} {what} although {run_id} succeeded", run_id, rows or 0)
    return PreviousBootstrap(True, f"{run_id} succeeded and {GOLD_TABLE} holds {rows:,} rows", run_id, rows)


class MetadataDbRuns:
    """The same question answered from Airflow's metadata database (the ``dag_run`` table, on the stack's
    own PostgreSQL): it can be asked as soon as PostgreSQL is up, before Airflow's API is, so a warm
    `streamflow up --resume` submits the Flink jobs before Airflow starts. Ordered like the API's
    ``order_by=-start_date`` on PostgreSQL (a queued run, no start date yet, first)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def latest_run(self, dag_id: str) -> dict[str, Any] | None:
        with psycopg.connect(self.settings.dsn(self.settings.airflow_db), connect_timeout=10) as conn:
            exists = conn.execute("SELECT to_regclass('public.dag_run') IS NOT NULL").fetchone()
            if not exists or not exists[0]:
                return None  # Airflow never migrated this database: nothing ever ran
            row = conn.execute("SELECT run_id, state FROM dag_run WHERE dag_id = %s ORDER BY start_date DESC "
                               "LIMIT 1", (dag_id,)).fetchone()
        return {"dag_run_id": row[0], "state": row[1]} if row else None


class ResumeError(RuntimeError):
    """A job could not be resumed, or did not become healthy; the message names it and why."""

    #: What to do next; printed after the error by both commands that resume (`up --resume`, `bootstrap --if-needed`).
    HINT = ("hint: `streamflow flink jobs` shows each job; `make bootstrap` runs bootstrap_pipeline again "
            "(its deploy tasks redeploy a failing job)")


def wait_healthy(settings: Settings, jobs: list[str], timeout_s: float, poll_s: float = 2.0) -> dict[str, JobHealth]:
    """Poll every job until each is healthy by the sensors' rule; raise naming those that are not.

    A job whose health can never come (a terminal state) fails at once, as the DAG sensors do."""
    from streamflow.flink_spec import spec_for
    from streamflow.runtime.health import job_health

    deadline = time.monotonic() + timeout_s
    latest: dict[str, JobHealth] = {}
    while True:
        for job in jobs:
            if job not in latest or not latest[job].healthy:
                latest[job] = job_health(job, settings, default_stable_window_s(spec_for(job), settings))
        final = [h for h in latest.values() if h.final and not h.healthy]
        waiting = [h for h in latest.values() if not h.healthy]
        if not waiting:
            return latest
        if final or time.monotonic() >= deadline:
            raise ResumeError("not healthy after resuming: " + "; ".join(h.reason for h in waiting))
        time.sleep(poll_s)


def resume(settings: Settings, timeout_s: float = 300.0,
           on_submitted: Callable[[], None] | None = None) -> dict[str, JobHealth]:
    """Deploy every job of the catalog through the local runtime (each from its latest retained
    checkpoint; a job already running is left alone), then wait until all are healthy. On Kubernetes
    the operator restores the FlinkDeployments: only the wait. ``on_submitted``: called once every job
    is on the cluster (nothing is submitted on Kubernetes: at once)."""
    from streamflow.catalog import flink_job_keys
    from streamflow.runtime.flink_local import deploy_all
    from streamflow.runtime.flink_local_config import FlinkJobError
    from streamflow.runtime.flink_local_lifecycle import JobHandle

    jobs = list(flink_job_keys())
    began = time.monotonic()
    if settings.runtime is not Runtime.LOCAL:
        # The Flink operator restores its FlinkDeployments by itself: nothing to submit, only to watch.
        if on_submitted is not None:
            on_submitted()
        return wait_healthy(settings, jobs, timeout_s)

    def deployed(handle: JobHandle) -> None:
        print(f"  {handle.name:<22} {handle.state:<8} {handle.job_id}  ({time.monotonic() - began:.0f} s)", flush=True)

    try:
        deploy_all(settings, on_deployed=deployed, on_submitted=on_submitted)
    except FlinkJobError as error:
        raise ResumeError(str(error)) from None
    remaining = max(30.0, timeout_s - (time.monotonic() - began))
    return wait_healthy(settings, jobs, remaining)
