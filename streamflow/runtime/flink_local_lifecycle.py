"""The lifecycle of one job's local Flink cluster: start, submit (resuming from the spec's
``upgradeMode``), wait until RUNNING, redeploy a failing job, stop.

Processes are started with :mod:`streamflow.stack.process` (own session, pid files with start
times), so ``stop`` works after a crash and leaves no orphan JVM.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streamflow.flink_health import ACTIVE_STATES, TERMINAL_STATES
from streamflow.flink_spec import FlinkJobSpec
from streamflow.logs import get_log
from streamflow.runtime.flink_local_config import (
    ClusterLayout,
    FlinkJobError,
    layout,
    pyflink_home,
    rest_port,
    submit_command,
)
from streamflow.runtime.flink_local_files import prepare_cluster_dir, process_env
from streamflow.runtime.flink_local_rest import (
    cancel_job,
    cluster_ready,
    jobs_overview,
    recorded_job_id,
    rest_url,
)
from streamflow.settings import Settings
from streamflow.stack.process import ServiceError, spawn, tail, wait_until
from streamflow.stack.process import stop as stop_process

log = get_log("streamflow.flink")


@dataclass(frozen=True)
class JobHandle:
    """What the DAG tasks and the CLI need to find a running local job again."""

    name: str
    job_id: str
    rest_url: str
    state: str
    log_dir: Path


def start_cluster(spec: FlinkJobSpec, settings: Settings, timeout_s: float | None = None) -> ClusterLayout:
    """Start the job's JobManager and TaskManager (no-op for the parts already running).

    Waits ``timeout_s``, by default ``STREAMFLOW_SERVICE_START_TIMEOUT_S`` (at least 90 s): three
    clusters starting together on a loaded 2-core host took over 90 s (measured in the e2e run).
    """
    timeout_s = timeout_s if timeout_s is not None else max(90.0, float(settings.service_start_timeout_s))
    paths = prepare_cluster_dir(spec, settings)
    env = process_env(spec, settings, paths)
    bin_dir = pyflink_home(settings) / "bin"
    for role, pid_file, log_file in (("jobmanager", paths.jobmanager_pid, paths.jobmanager_log),
                                     ("taskmanager", paths.taskmanager_pid, paths.taskmanager_log)):
        if pid_file.alive_pid() is None:
            spawn(f"flink-{spec.name}-{role}", ["bash", str(bin_dir / f"{role}.sh"), "start-foreground"],
                  pid_file=pid_file, log_file=log_file, env=env, cwd=paths.root)
    try:
        wait_until(
            f"flink cluster {spec.name}",
            lambda: cluster_ready(spec, settings),
            timeout_s=timeout_s,
            log_file=paths.jobmanager_log,
            pid_file=paths.jobmanager_pid,
        )
    except ServiceError as error:
        raise FlinkJobError(
            f"{error}\nTaskManager log: {paths.taskmanager_log}\nhint: check the ports "
            f"{rest_port(spec, settings)}/{rest_port(spec, settings) + 1000} are free, then `streamflow down`"
        ) from None
    log.info("flink cluster ready", job=spec.name, rest=rest_url(spec, settings), logs=paths.log_dir)
    return paths


def latest_checkpoint(spec: FlinkJobSpec, settings: Settings) -> Path | None:
    """The newest completed checkpoint (``chk-N`` with ``_metadata``) retained for this job."""
    paths = layout(spec, settings)
    candidates = [meta.parent for meta in paths.checkpoints_dir.glob("*/chk-*/_metadata")]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def restore_point(spec: FlinkJobSpec, settings: Settings) -> Path | None:
    """Where a (re)submitted job resumes, following the spec's ``job.upgradeMode`` like the operator:

    * ``stateless``: nowhere (fresh state; Kafka sources start from the group's committed offsets);
    * ``last-state``: the latest retained checkpoint;
    * ``savepoint``: the latest retained checkpoint too. The operator takes a savepoint only from a
      RUNNING job; locally a resubmission follows a crash, a ``streamflow down`` or a failing job,
      where no savepoint can be taken, and the operator itself then falls back to last-state
      (``kubernetes.operator.job.upgrade.last-state-fallback.enabled``, default true).
    """
    if spec.upgrade_mode == "stateless":
        return None
    return latest_checkpoint(spec, settings)


def submit(spec: FlinkJobSpec, settings: Settings, timeout_s: float = 420.0) -> str:
    """Submit the spec's job to its (running) cluster, resuming from :func:`restore_point`."""
    paths = layout(spec, settings)
    restore = restore_point(spec, settings)
    cmd = submit_command(spec, settings, restore)
    env = process_env(spec, settings, paths)
    log.info("submitting flink job", job=spec.name, restore_from=restore or "none", log=paths.submit_log)
    with open(paths.submit_log, "ab") as out:
        out.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        try:
            completed = subprocess.run(
                cmd, stdout=subprocess.PIPE, stderr=out, env=env, cwd=settings.repo_root,
                timeout=timeout_s, check=False,
            )
        except subprocess.TimeoutExpired:
            active = [j for j in jobs_overview(spec, settings) if j.get("state") in ACTIVE_STATES]
            if active:  # the client was slow to exit (a loaded machine), but the job got submitted
                log.warning("flink client timed out after submitting", job=spec.name, log=paths.submit_log)
                job_id = str(active[0]["jid"])
                paths.job_file.write_text(json.dumps({"job_id": job_id, "submitted_at": time.time()}))
                return job_id
            raise FlinkJobError(
                f"submitting {spec.name} took over {timeout_s:.0f} s; see {paths.submit_log}\n"
                "hint: the Python client compiles the job graph; on a busy machine raise the timeout"
            ) from None
        out.write(completed.stdout)
    match = re.search(rb"JobID ([0-9a-f]{32})", completed.stdout)
    if completed.returncode != 0 or not match:
        raise FlinkJobError(
            f"submitting {spec.name} failed (exit {completed.returncode}); see its log: {paths.submit_log}\n"
            f"{tail(paths.submit_log, 25)}"
        )
    job_id = match.group(1).decode()
    record = {"job_id": job_id, "submitted_at": time.time(), "spec": str(spec.source_path)}
    paths.job_file.write_text(json.dumps(record))
    return job_id


def wait_running(spec: FlinkJobSpec, settings: Settings, job_id: str | None = None, timeout_s: float = 120.0,
                 restarts_before: int = 0) -> str:
    """Poll until the job is RUNNING with all tasks running; raise on FAILED, a restart loop or timeout.

    A job whose sink cannot write never gets all its tasks RUNNING: it fails in the tasks' start-up,
    restarts, fails again. Waiting for the timeout would only say "not RUNNING"; instead the restart
    count is read every few seconds and a loop (two restarts more than ``restarts_before``) fails the
    deploy at once, naming Flink's exception.
    """
    from streamflow.flink_health import Verdict, sensor_decision
    from streamflow.runtime.health import local_health

    paths = layout(spec, settings)
    job_id = job_id or recorded_job_id(spec, settings)
    deadline = time.monotonic() + timeout_s
    state = "UNKNOWN"
    next_health_check = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        for job in jobs_overview(spec, settings):
            if job.get("jid") != job_id:
                continue
            state = str(job.get("state"))
            tasks = job.get("tasks", {})
            if state == "RUNNING" and int(tasks.get("running", 0)) == int(tasks.get("total", -1)):
                return state
            if state in TERMINAL_STATES:
                raise FlinkJobError(
                    f"flink job {spec.name} ({job_id}) is {state}; see {paths.jobmanager_log} "
                    f"and {paths.taskmanager_log}\n{tail(paths.taskmanager_log, 25)}"
                )
        if time.monotonic() >= next_health_check:
            next_health_check = time.monotonic() + 3.0
            health = local_health(spec.job_key, spec, settings, stable_window_s=0.0)
            decision = sensor_decision(health, restarts_before if health.job_id == job_id else 0)
            if decision.verdict is Verdict.FAILED:
                raise FlinkJobError(f"{decision.reason}\nlogs: {paths.taskmanager_log}, {paths.jobmanager_log}")
        time.sleep(1.0)
    raise FlinkJobError(
        f"flink job {spec.name} ({job_id}) not RUNNING after {timeout_s:.0f} s (last state {state}); "
        f"see {paths.jobmanager_log} and {paths.taskmanager_log}"
    )


def redeploy(spec: FlinkJobSpec, settings: Settings, job_id: str, why: str,
             submit_timeout_s: float = 420.0) -> str:
    """Cancel a failing job and submit it again from :func:`restore_point` (ADR 0010).

    The local equivalent of bumping ``spec.restartNonce`` on a FlinkDeployment: the operator
    cancels a job that is not RUNNING and restores it from its last checkpoint (savepoint mode
    falls back to last-state, as a failing job cannot take a savepoint).
    """
    log.warning("flink job is failing: cancelling and resubmitting", job=spec.name, job_id=job_id, reason=why,
                upgrade_mode=spec.upgrade_mode)
    try:
        final = cancel_job(spec, settings, job_id)
        log.info("flink job cancelled", job=spec.name, job_id=job_id, state=final)
    except FlinkJobError as error:  # the cluster restart below ends it anyway
        log.warning("flink job did not cancel cleanly", job=spec.name, job_id=job_id, error=error)
    restart_cluster(spec, settings)
    return submit(spec, settings, timeout_s=submit_timeout_s)


def restart_cluster(spec: FlinkJobSpec, settings: Settings) -> ClusterLayout:
    """Stop and start the job's JobManager and TaskManager (retained checkpoints stay).

    Needed before every new job on a cluster that already ran one: a TaskManager that ran a
    thread-mode PyFlink job cannot initialise Python for a second job (pemja:
    ``NoSuchFieldException: loadedLibraryNames``, measured on 1.20.5), so the new job would
    crash-loop for a reason that has nothing to do with it.
    """
    log.info("restarting flink cluster for a new job", job=spec.name,
             restore_from=restore_point(spec, settings) or "none")
    stop(spec, settings)
    return start_cluster(spec, settings)


def deploy(spec: FlinkJobSpec, settings: Settings, timeout_s: float = 240.0,
           submit_timeout_s: float = 900.0) -> JobHandle:
    """Idempotent: start the cluster if needed, submit unless a job is already active, wait RUNNING.

    An active job in a restart loop (not healthy, restarted twice or more:
    :func:`streamflow.flink_health.needs_redeploy`) on a whole cluster is cancelled and resubmitted
    (:func:`redeploy`): re-running bootstrap_pipeline is how a user recovers a job, and "already
    deployed" must not hide a restart loop. When this call had to start a lost JobManager or
    TaskManager, the job is left to Flink's own recovery on the new process.
    """
    from streamflow.flink_health import needs_redeploy
    from streamflow.runtime.health import local_health

    before = layout(spec, settings)
    cluster_was_whole = before.jobmanager_pid.alive_pid() is not None and before.taskmanager_pid.alive_pid() is not None
    paths = start_cluster(spec, settings)
    jobs = jobs_overview(spec, settings)
    active = [j for j in jobs if j.get("state") in ACTIVE_STATES]
    restarts_before = 0
    if active:
        job_id = str(active[0]["jid"])
        health = local_health(spec.job_key, spec, settings, stable_window_s=2.0 * settings.flink_checkpoint_interval_s)
        if cluster_was_whole and needs_redeploy(health):
            job_id = redeploy(spec, settings, job_id, health.reason, submit_timeout_s=submit_timeout_s)
        else:
            # A TaskManager this call just started: Flink restores the job on it by itself (no resubmit).
            restarts_before = health.restarts or 0
            log.info("flink job already deployed", job=spec.name, job_id=job_id, state=active[0]["state"],
                     health=health.reason)
    else:
        if jobs:
            log.warning("flink job not active, resubmitting", job=spec.name, states=[j.get("state") for j in jobs])
            restart_cluster(spec, settings)
        job_id = submit(spec, settings, timeout_s=submit_timeout_s)
    state = wait_running(spec, settings, job_id, timeout_s=timeout_s, restarts_before=restarts_before)
    log.info("flink job running", job=spec.name, job_id=job_id, rest=rest_url(spec, settings))
    return JobHandle(spec.name, job_id, rest_url(spec, settings), state, paths.log_dir)


def stop(spec: FlinkJobSpec, settings: Settings, reset_state: bool = False) -> bool:
    """Stop the job's cluster (TaskManager first); checkpoints stay, so the next deploy resumes.

    ``reset_state`` also deletes the retained checkpoints: the next deploy starts from the Kafka
    offsets committed for the job's group (use it after changing the operator graph).
    """
    paths = layout(spec, settings)
    stopped_tm = stop_process(f"flink-{spec.name}-taskmanager", paths.taskmanager_pid)
    stopped_jm = stop_process(f"flink-{spec.name}-jobmanager", paths.jobmanager_pid)
    if stopped_tm or stopped_jm:
        log.info("flink cluster stopped", job=spec.name)
    if reset_state:
        shutil.rmtree(paths.checkpoints_dir, ignore_errors=True)
        paths.job_file.unlink(missing_ok=True)
        log.info("flink job state reset", job=spec.name, hint="next deploy starts from committed Kafka offsets")
    return stopped_tm or stopped_jm

