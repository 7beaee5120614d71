"""The local runtime for Flink jobs: one local session cluster for all the pipeline's FlinkDeployments.

One JobManager + one TaskManager (slots: the sum of the jobs' parallelism) started from the PyFlink
pip package (``pyflink/bin``, ``pyflink/lib``) run every job of the catalog (ADR 0013; ADR 0003 had one
cluster per job because a second thread-mode job crashed in pemja, fixed since flink-python is in the
cluster's lib dir and pemja is loaded parent-first). Each job stays its own Flink job: its own client
configuration (checkpoint dir, state backend, restart strategy), job file, submit log, restore point
and health, found among the cluster's jobs by the name Flink reports. A spec outside the catalog (a
benchmark variant) gets a cluster of its own.

Single source of truth: the job's arguments, parallelism, Flink configuration, resources and
environment are read from ``k8s/base/flink/<job>.yaml``. Only runtime-bound values are replaced;
they are listed ONCE, in :data:`LOCAL_OVERRIDES` (configuration keys) and :data:`ENV_OVERRIDES`
(container env), each with the reason, and the topic arguments are bound to the settings
(:func:`streamflow.catalog.bind_job_topics`, as on Kubernetes). A change to the YAML therefore shows
in the local run.

The parts, one module each: spec translation (:mod:`~streamflow.runtime.flink_local_config`), the
cluster's files (:mod:`~streamflow.runtime.flink_local_files`), the REST client
(:mod:`~streamflow.runtime.flink_local_rest`) and the lifecycle of the cluster and its jobs
(:mod:`~streamflow.runtime.flink_local_lifecycle`). This module is what the rest of StreamFlow imports:
their public names, and the operations on every job at once (deploy, stop, status).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from streamflow.catalog import flink_job, flink_jobs
from streamflow.flink_spec import load_all
from streamflow.runtime.flink_local_config import (
    ENV_OVERRIDES,
    IMAGE_PYTHON,
    IMAGE_USRLIB,
    JOB_LEVEL_PREFIXES,
    LOCAL_OVERRIDES,
    SHARED_CLUSTER,
    TASKMANAGER_MB_PER_EXTRA_JOB,
    ClusterLayout,
    FlinkJobError,
    client_configuration,
    cluster_configuration,
    cluster_env,
    cluster_members,
    cluster_name,
    flatten_yaml,
    flink_job_name,
    flink_venv_python,
    job_configuration,
    job_index,
    layout,
    local_flink_configuration,
    local_job_args,
    local_job_env,
    pyflink_home,
    render_config_yaml,
    rest_port,
    submit_command,
)
from streamflow.runtime.flink_local_files import (
    cluster_process_env,
    prepare_client_dir,
    prepare_cluster_dir,
    process_env,
)
from streamflow.runtime.flink_local_lifecycle import (
    JobHandle,
    cluster_lock,
    deploy,
    latest_checkpoint,
    redeploy,
    restart_cluster,
    restore_point,
    start_cluster,
    stop,
    stop_cluster,
    submit,
    wait_running,
)
from streamflow.runtime.flink_local_rest import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    RestUnavailable,
    cancel_job,
    cluster_alive,
    cluster_jobs_overview,
    cluster_ready,
    current_job_id,
    job_rest_documents,
    job_state,
    jobs_overview,
    own_jobs,
    recorded_job_id,
    rest_url,
)
from streamflow.settings import Settings
from streamflow.stack.process import PidFile
from streamflow.stack.process import stop as stop_process

__all__ = [
    "ACTIVE_STATES", "ENV_OVERRIDES", "IMAGE_PYTHON", "IMAGE_USRLIB", "JOB_LEVEL_PREFIXES", "LOCAL_OVERRIDES",
    "SHARED_CLUSTER", "TASKMANAGER_MB_PER_EXTRA_JOB", "TERMINAL_STATES",
    "ClusterLayout", "FlinkJobError", "JobHandle", "RestUnavailable", "cancel_job", "client_configuration",
    "cluster_alive", "cluster_configuration", "cluster_env", "cluster_jobs_overview", "cluster_lock",
    "cluster_members", "cluster_name", "cluster_process_env", "cluster_ready", "current_job_id", "deploy",
    "deploy_all", "flatten_yaml", "flink_job_name", "flink_venv_python", "job_configuration", "job_index",
    "job_rest_documents", "job_state", "jobs_overview", "latest_checkpoint", "layout", "local_flink_configuration",
    "local_job_args", "local_job_env", "own_jobs", "prepare_client_dir", "prepare_cluster_dir", "process_env",
    "pyflink_home",
    "recorded_job_id", "redeploy", "render_config_yaml", "rest_port", "rest_url", "restart_cluster",
    "restore_point", "start_cluster", "status_lines", "stop", "stop_all", "stop_cluster", "submit",
    "submit_command", "wait_running",
]


def stop_all(settings: Settings) -> list[str]:
    """Stop every local Flink cluster without cancelling its jobs (`streamflow down`): the shared one,
    and any other whose pid files are left behind. Retained checkpoints stay; the next deploys resume."""
    specs = list(load_all().values())
    stopped = [layout(specs[0], settings).cluster] if specs and stop_cluster(specs[0], settings) else []
    for pid_path in sorted((settings.state_dir / "run").glob("flink-*.pid"), key=lambda p: "jobmanager" in p.name):
        if stop_process(pid_path.stem, PidFile(pid_path)):
            stopped.append(pid_path.stem)
    return stopped


def status_lines(settings: Settings) -> list[str]:
    """One line per job for `streamflow status`: its state and whether it is healthy (ADR 0010), and
    why not on a second line."""
    from streamflow.flink_health import default_stable_window_s, local_health

    lines = []
    for spec in load_all().values():
        health = local_health(spec.job_key, spec, settings, default_stable_window_s(spec, settings))
        verdict = "healthy" if health.healthy else "not healthy"
        lines.append(f"  flink {spec.name:<22} {health.state:<13} {verdict:<12} {rest_url(spec, settings)}")
        if not health.healthy and health.state != "CLUSTER_DOWN":
            lines.append(f"        {health.reason}")
    return lines


def deploy_all(
    settings: Settings,
    names: Iterable[str] | None = None,
    on_deployed: Callable[[JobHandle], None] | None = None,
) -> list[JobHandle]:
    """Deploy several jobs one after the other (the machine has 2 cores: parallel starts just thrash)."""
    specs = load_all()
    wanted = list(names) if names is not None else [job.name for job in flink_jobs()]
    handles = []
    for name in wanted:
        handle = deploy(specs[flink_job(name).name], settings)
        if on_deployed:
            on_deployed(handle)
        handles.append(handle)
    return handles
