"""Local runtime: Flink jobs on one local session cluster, the generator as a local process.

Both read the Kubernetes specs (FlinkDeployment YAMLs, the generator pod template) so the two
runtimes cannot drift apart; see streamflow/runtime/flink_local.py and streamflow/generator_spec.py.
"""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import BaseOperator

from streamflow import catalog
from streamflow.flink_health import DEFAULT_MAX_RESTARTS
from streamflow.generator_spec import bounded_run_args, load_generator_spec, local_argv
from streamflow.logs import get_log
from streamflow.settings import get_settings

log = get_log("streamflow.runtime.local")


# ---- callables (run inside Airflow tasks) ------------------------------------------------------
def deploy_flink_job(job: str) -> dict[str, Any]:
    """Start or keep the job; a failing job is cancelled and resubmitted (ADR 0010). The XCom keeps
    the job id and its restart count, the baseline the "running" sensor measures a loop against."""
    from streamflow.flink_spec import load_spec
    from streamflow.runtime.flink_local_lifecycle import deploy
    from streamflow.runtime.health import job_health

    settings = get_settings()
    spec = load_spec(catalog.flink_job(job).spec_path)
    handle = deploy(spec, settings)
    health = job_health(job, settings)
    return {"job": job, "handle": str(handle), "job_id": handle.job_id, "restarts": health.restarts}


def flink_job_running(job: str, ti: Any = None, max_restarts: int = DEFAULT_MAX_RESTARTS) -> bool:
    """The "running" sensor: True only when the job is healthy (:func:`streamflow.runtime.health.job_health`:
    RUNNING, stable for two checkpoint intervals, a checkpoint completed since it (re)started).
    Raises, naming Flink's last exception, when the job is terminal or in a restart loop."""
    from streamflow.flink_health import Verdict, sensor_decision
    from streamflow.runtime.health import job_health

    settings = get_settings()
    health = job_health(job, settings)
    baseline = _deployed_restarts(ti, job, health.job_id)
    decision = sensor_decision(health, baseline, max_restarts)
    log.info("flink job health", job=job, state=health.state, restarts=health.restarts,
             restarts_at_deploy=baseline, healthy=health.healthy, verdict=decision.verdict.value,
             reason=decision.reason)
    if decision.verdict is Verdict.FAILED:
        from streamflow.flink_spec import load_spec
        from streamflow.runtime.flink_local_config import layout

        paths = layout(load_spec(catalog.flink_job(job).spec_path), settings)
        raise RuntimeError(f"local Flink job {job}: {decision.reason}\nlogs: {paths.taskmanager_log}, "
                           f"{paths.jobmanager_log}, {paths.submit_log}; Flink UI: {health.source}")
    return decision.verdict is Verdict.RUNNING


def _deployed_restarts(ti: Any, job: str, job_id: str | None) -> int | None:
    """Restarts the deploy task saw on the same job id (None outside Airflow or for another job)."""
    if ti is None:
        return None
    pushed = ti.xcom_pull(task_ids=f"deploy_{job}")
    if not isinstance(pushed, dict) or pushed.get("job_id") != job_id or pushed.get("restarts") is None:
        return None
    return int(pushed["restarts"])


def run_generator() -> dict[str, Any]:
    """Run the generator pod's command locally; stream its output into the Airflow task log."""
    settings = get_settings()
    spec = load_generator_spec().with_args(*bounded_run_args(settings))
    argv, env = local_argv(spec, settings)
    import os

    full_env = {**os.environ, **env}
    print(f"running generator: {' '.join(argv)}", flush=True)
    began = time.monotonic()
    with subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          cwd=settings.repo_root) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line.rstrip(), flush=True)
        code = proc.wait()
    if code != 0:
        raise RuntimeError(f"generator exited with code {code}; its output is above")
    return {"events": settings.generator_events, "seconds": round(time.monotonic() - began, 1)}


# ---- task builders -----------------------------------------------------------------------------
class LocalRuntime:
    """Needs no settings to build the tasks: each callable reads them itself when it runs, in the worker."""

    def flink_job(self, job: str) -> tuple[BaseOperator, BaseOperator]:
        # Up to: cluster start (STREAMFLOW_SERVICE_START_TIMEOUT_S, twice on a redeploy) + submit 900 s (the
        # PyFlink client took over 420 s with three jobs submitted at once on a loaded 2-core host) + RUNNING 240 s.
        deploy = PythonOperator(task_id=f"deploy_{job}", python_callable=deploy_flink_job, op_kwargs={"job": job},
                                execution_timeout=timedelta(minutes=25))
        wait = PythonSensor(task_id=f"wait_{job}_running", python_callable=flink_job_running,
                            op_kwargs={"job": job}, poke_interval=5, timeout=420, mode="poke")
        deploy >> wait
        return deploy, wait

    def generator(self) -> BaseOperator:
        return PythonOperator(task_id="run_generator", python_callable=run_generator,
                              execution_timeout=timedelta(minutes=20))
