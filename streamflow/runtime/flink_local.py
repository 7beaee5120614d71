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
(:mod:`~streamflow.runtime.flink_local_lifecycle`); callers import each from its module. This one holds
the operations on every job at once: deploy, stop, status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from streamflow.catalog import flink_job, flink_jobs
from streamflow.flink_health import CLUSTER_DOWN, default_stable_window_s
from streamflow.flink_spec import load_all
from streamflow.runtime.flink_local_config import layout
from streamflow.runtime.flink_local_lifecycle import JobHandle, deploy, latest_checkpoint, start_cluster, stop_cluster
from streamflow.runtime.flink_local_rest import rest_url
from streamflow.runtime.health import local_health
from streamflow.settings import Settings
from streamflow.stack.process import PidFile
from streamflow.stack.process import stop as stop_process

__all__ = ["deploy_all", "retained_checkpoints", "start_shared_cluster", "status_lines", "stop_all"]


def retained_checkpoints(settings: Settings) -> bool:
    """Whether any catalog job has a completed checkpoint in the state folder (a pipeline ran here)."""
    specs = load_all()
    return any(latest_checkpoint(specs[job.name], settings) is not None for job in flink_jobs())


def start_shared_cluster(settings: Settings) -> str:
    """Start the catalog's one session cluster (JobManager + TaskManager), no job on it; returns its
    REST URL. A warm `streamflow up --resume` starts it from its first second (ADR 0014), so its JVMs
    start alongside PostgreSQL and Kafka; the resume's deploys find it running (or wait on its lock)."""
    spec = load_all()[flink_jobs()[0].name]
    start_cluster(spec, settings)
    return rest_url(spec, settings)


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
    lines = []
    for spec in load_all().values():
        health = local_health(spec.job_key, spec, settings, default_stable_window_s(spec, settings))
        verdict = "healthy" if health.healthy else "not healthy"
        lines.append(f"  flink {spec.name:<22} {health.state:<13} {verdict:<12} {rest_url(spec, settings)}")
        if not health.healthy and health.state != CLUSTER_DOWN:
            lines.append(f"        {health.reason}")
    return lines


def deploy_all(
    settings: Settings,
    names: Iterable[str] | None = None,
    on_deployed: Callable[[JobHandle], None] | None = None,
    on_submitted: Callable[[], None] | None = None,
) -> list[JobHandle]:
    """Deploy several jobs at once, as bootstrap_pipeline's parallel deploy tasks do (the first starts
    the shared cluster under its lock, the others wait for it). On 2 cores this barely shortens the
    deploy itself (ADR 0014: 64.9 s in turn, 60.9 s at once), but the jobs then reach RUNNING together,
    so their stable windows overlap instead of the last one starting after the others. All deploys are
    awaited; the first failure is raised after, naming its job. ``on_submitted`` is called once, when
    every job is on the cluster (its `flink run` client done) or its deploy failed, before the jobs are
    awaited RUNNING."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    specs = load_all()
    wanted = list(names) if names is not None else [job.name for job in flink_jobs()]
    not_submitted = set(wanted)
    lock = threading.Lock()

    def submitted(name: str) -> None:
        with lock:
            if name not in not_submitted:
                return
            not_submitted.discard(name)
            last = not not_submitted
        if last and on_submitted is not None:
            on_submitted()

    def one(name: str) -> JobHandle:
        try:
            handle = deploy(specs[flink_job(name).name], settings, on_submitted=lambda: submitted(name))
        finally:
            submitted(name)  # a deploy that failed before submitting counts as done too: nobody waits in vain
        if on_deployed:
            on_deployed(handle)
        return handle

    with ThreadPoolExecutor(max_workers=max(1, len(wanted)), thread_name_prefix="deploy") as pool:
        futures = [pool.submit(one, name) for name in wanted]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]  # type: ignore[misc]
    return [f.result() for f in futures]
