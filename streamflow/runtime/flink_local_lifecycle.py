"""The lifecycle of the local Flink cluster and of each job on it: start the cluster (once, under a
file lock: the deploy tasks run concurrently), submit a job (resuming from the spec's ``upgradeMode``),
wait until RUNNING, redeploy a failing job (cancel + resubmit; the cluster and the other jobs keep
running), stop a job (cancel; the cluster stops with its last job), stop the cluster.

Processes are started with :mod:`streamflow.stack.process` (own session, pid files with start
times), so ``stop`` works after a crash and leaves no orphan JVM.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from streamflow.flink_health import ACTIVE_STATES, TERMINAL_STATES
from streamflow.flink_spec import FlinkJobSpec
from streamflow.logs import get_log
from streamflow.runtime.flink_local_config import (
    LEGACY_STATE_BACKEND,
    ClusterLayout,
    FlinkJobError,
    cluster_configuration,
    flink_job_name,
    layout,
    pyflink_home,
    rest_port,
    restore_backend_overrides,
    state_backend,
    submit_command,
)
from streamflow.runtime.flink_local_files import (
    cluster_process_env,
    prepare_client_dir,
    prepare_cluster_dir,
    process_env,
)
from streamflow.runtime.flink_local_rest import (
    cancel_job,
    cluster_jobs_overview,
    cluster_ready,
    job_state,
    jobs_overview,
    recorded_job_id,
    rest_url,
    stop_with_savepoint,
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


@contextlib.contextmanager
def cluster_lock(paths: ClusterLayout) -> Iterator[None]:
    """Exclusive while held, across processes (Airflow runs the deploy tasks in parallel) and threads
    (each call opens its own file description): the cluster is checked and started by one caller."""
    paths.lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(paths.lock_file, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_cluster(spec: FlinkJobSpec, settings: Settings, timeout_s: float | None = None) -> ClusterLayout:
    """Start the JobManager and TaskManager of the spec's cluster (no-op for the parts already running).

    The catalog's jobs share one cluster: a warm `streamflow up --resume` starts it early (ADR 0014), else
    the first deploy does; concurrent callers wait on the lock and find it running. Its configuration and
    env are merged from every catalog spec and checked first (a conflicting cluster-level key or env
    variable fails here, naming both specs). Waits
    ``timeout_s``, by default ``STREAMFLOW_SERVICE_START_TIMEOUT_S`` (at least 90 s).
    """
    timeout_s = timeout_s if timeout_s is not None else max(90.0, float(settings.service_start_timeout_s))
    paths = layout(spec, settings)
    slots = int(cluster_configuration(spec, settings)["taskmanager.numberOfTaskSlots"])
    with cluster_lock(paths):
        roles = (("jobmanager", paths.jobmanager_pid, paths.jobmanager_log),
                 ("taskmanager", paths.taskmanager_pid, paths.taskmanager_log))
        missing = [role for role in roles if role[1].alive_pid() is None]
        if missing:
            if len(missing) == len(roles):  # the files only while nothing runs from them
                prepare_cluster_dir(spec, settings)
            env = cluster_process_env(spec, settings, paths)
            bin_dir = pyflink_home(settings) / "bin"
            for role, pid_file, log_file in missing:
                spawn(f"flink-{paths.cluster}-{role}", ["bash", str(bin_dir / f"{role}.sh"), "start-foreground"],
                      pid_file=pid_file, log_file=log_file, env=env, cwd=paths.cluster_root)
        try:
            wait_until(
                f"flink cluster {paths.cluster}",
                lambda: cluster_ready(spec, settings, slots),
                timeout_s=timeout_s,
                log_file=paths.jobmanager_log,
                pid_file=paths.jobmanager_pid,
            )
        except ServiceError as error:
            raise FlinkJobError(
                f"{error}\nTaskManager log: {paths.taskmanager_log}\nhint: check the ports "
                f"{rest_port(spec, settings)}/{rest_port(spec, settings) + 1000} are free, then `streamflow down`"
            ) from None
    if missing:
        log.info("flink cluster ready", cluster=paths.cluster, rest=rest_url(spec, settings),
                 logs=paths.cluster_log_dir, slots=slots)
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


def recorded_state_backend(spec: FlinkJobSpec, settings: Settings) -> str | None:
    """The state backend the job's last submission ran with (its job file), None when not recorded."""
    try:
        value = json.loads(layout(spec, settings).job_file.read_text()).get("state_backend")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


def submit(spec: FlinkJobSpec, settings: Settings, timeout_s: float = 420.0,
           restore_from: Path | None = None) -> str:
    """Submit the spec's job to its (running) cluster, resuming from ``restore_from`` (a savepoint) or else
    :func:`restore_point`, with its own client configuration (job-level options: checkpoint dir, state
    backend...). A checkpoint is restored with the backend that wrote it (:func:`restore_backend_overrides`)."""
    restore = restore_from or restore_point(spec, settings)
    overrides: dict[str, str] = {}
    if restore is not None and restore_from is None:
        overrides = restore_backend_overrides(spec, recorded_state_backend(spec, settings))
        if overrides:
            log.warning("flink job keeps the state backend its checkpoint was written with", job=spec.name,
                        state_backend=overrides["state.backend.type"], spec_backend=state_backend(spec),
                        hint="the next deploy of the running job switches it through a canonical savepoint")
    backend = overrides.get("state.backend.type", state_backend(spec))
    paths = prepare_client_dir(spec, settings, overrides)
    cmd = submit_command(spec, settings, restore)
    env = process_env(spec, settings, paths)
    log.info("submitting flink job", job=spec.name, restore_from=restore or "none", state_backend=backend,
             log=paths.submit_log)
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
                paths.job_file.write_text(json.dumps({"job_id": job_id, "submitted_at": time.time(),
                                                      "state_backend": backend}))
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
    record = {"job_id": job_id, "submitted_at": time.time(), "spec": str(spec.source_path), "state_backend": backend}
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
    falls back to last-state, as a failing job cannot take a savepoint). Only this job: the cluster
    and the other jobs on it keep running (ADR 0013). A job that does not cancel is not submitted
    twice: the deploy fails instead.
    """
    log.warning("flink job is failing: cancelling and resubmitting", job=spec.name, job_id=job_id, reason=why,
                upgrade_mode=spec.upgrade_mode)
    final = cancel_job(spec, settings, job_id)
    log.info("flink job cancelled", job=spec.name, job_id=job_id, state=final)
    return submit(spec, settings, timeout_s=submit_timeout_s)


def switch_state_backend(spec: FlinkJobSpec, settings: Settings, job_id: str,
                         submit_timeout_s: float = 420.0) -> str:
    """Move a running job's state to the spec's backend: stop it with a canonical savepoint and submit
    it again from that savepoint with the spec's configuration - what the operator does on Kubernetes
    for a ``savepoint`` upgrade. Nothing is lost: the savepoint holds the keyed state and the Kafka
    offsets, and the job resumes exactly there. A savepoint that fails leaves the job running as it was.
    """
    target = layout(spec, settings).savepoints_dir
    target.mkdir(parents=True, exist_ok=True)
    log.info("switching flink job state backend through a canonical savepoint", job=spec.name, job_id=job_id,
             from_backend=recorded_state_backend(spec, settings) or LEGACY_STATE_BACKEND,
             to_backend=state_backend(spec))
    savepoint = stop_with_savepoint(spec, settings, job_id, target.as_uri())
    location = Path(urlparse(savepoint).path if savepoint.startswith("file:") else savepoint)
    log.info("flink job stopped with a savepoint", job=spec.name, savepoint=str(location))
    return submit(spec, settings, timeout_s=submit_timeout_s, restore_from=location)


def restart_cluster(spec: FlinkJobSpec, settings: Settings) -> ClusterLayout:
    """Stop and start the spec's cluster (retained checkpoints stay). With the shared cluster this
    interrupts EVERY job on it (Flink recovers them from their checkpoints on the new processes); the
    runtime itself never calls it for one job's redeploy."""
    log.info("restarting flink cluster", cluster=layout(spec, settings).cluster)
    stop_cluster(spec, settings)
    return start_cluster(spec, settings)


def deploy(spec: FlinkJobSpec, settings: Settings, timeout_s: float = 240.0,
           submit_timeout_s: float = 900.0, on_submitted: Callable[[], None] | None = None) -> JobHandle:
    """Idempotent: start the (shared) cluster if needed, submit the spec's job unless it is already
    active, wait RUNNING. Other jobs on the cluster are neither read nor touched.

    An active job in a restart loop (not healthy, restarted twice or more:
    :func:`streamflow.flink_health.needs_redeploy`) on a whole cluster is cancelled and resubmitted
    (:func:`redeploy`): re-running bootstrap_pipeline is how a user recovers a job, and "already
    deployed" must not hide a restart loop. A RUNNING job whose state is in another backend than the
    spec's is moved to it through a canonical savepoint (:func:`switch_state_backend`). When this call had
    to start a lost JobManager or TaskManager, the job is left to Flink's own recovery on the new process.
    ``on_submitted`` is called once the job is on the cluster (submitted, or found active), before the
    wait for RUNNING.
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
        elif (cluster_was_whole and active[0].get("state") == "RUNNING"
              and restore_backend_overrides(spec, recorded_state_backend(spec, settings))):
            try:
                job_id = switch_state_backend(spec, settings, job_id, submit_timeout_s=submit_timeout_s)
            except FlinkJobError as error:
                if job_state(spec, settings) != "RUNNING":  # stopped by the savepoint: not as it was
                    raise
                log.warning("flink job state backend not switched; it keeps running on its own backend", job=spec.name,
                            error=str(error), hint="the next deploy tries again")
        else:
            # A TaskManager this call just started: Flink restores the job on it by itself (no resubmit).
            restarts_before = health.restarts or 0
            log.info("flink job already deployed", job=spec.name, job_id=job_id, state=active[0]["state"],
                     health=health.reason)
    else:
        if jobs:
            log.warning("flink job not active, resubmitting", job=spec.name, states=[j.get("state") for j in jobs])
        job_id = submit(spec, settings, timeout_s=submit_timeout_s)
    if on_submitted is not None:
        on_submitted()
    state = wait_running(spec, settings, job_id, timeout_s=timeout_s, restarts_before=restarts_before)
    log.info("flink job running", job=spec.name, job_id=job_id, rest=rest_url(spec, settings))
    return JobHandle(spec.name, job_id, rest_url(spec, settings), state, paths.log_dir)


def stop(spec: FlinkJobSpec, settings: Settings, reset_state: bool = False) -> bool:
    """Stop the spec's job: cancel it (its checkpoints are retained, so the next deploy resumes), and
    stop the cluster too when no other job is active on it. True if anything was stopped.

    ``reset_state`` also deletes the retained checkpoints: the next deploy starts from the Kafka
    offsets committed for the job's group (use it after changing the operator graph).
    """
    paths = layout(spec, settings)
    stopped = False
    failed: FlinkJobError | None = None
    if paths.jobmanager_pid.alive_pid() is not None:
        for job in jobs_overview(spec, settings):
            if job.get("state") in ACTIVE_STATES:
                try:
                    cancel_job(spec, settings, str(job["jid"]))
                    stopped = True
                except FlinkJobError as error:
                    failed = error
        others = sorted({str(j.get("name")) for j in cluster_jobs_overview(spec, settings)
                         if j.get("state") in ACTIVE_STATES} - {flink_job_name(spec)})
        if others:
            if failed is not None:  # the cluster must stay up for the others: say so instead of killing them
                raise FlinkJobError(f"{spec.name} did not cancel ({failed}); the cluster keeps running for {others}")
            log.info("flink job stopped; the cluster keeps running for the other jobs", job=spec.name, others=others)
    if paths.jobmanager_pid.alive_pid() is None or not others_active(spec, settings):
        stopped = stop_cluster(spec, settings) or stopped
    if reset_state:
        shutil.rmtree(paths.checkpoints_dir, ignore_errors=True)
        paths.job_file.unlink(missing_ok=True)
        log.info("flink job state reset", job=spec.name, hint="next deploy starts from committed Kafka offsets")
    return stopped


def others_active(spec: FlinkJobSpec, settings: Settings) -> bool:
    """Whether a job other than the spec's is active on the spec's cluster."""
    return any(j.get("state") in ACTIVE_STATES and j.get("name") != flink_job_name(spec)
               for j in cluster_jobs_overview(spec, settings))


def stop_cluster(spec: FlinkJobSpec, settings: Settings) -> bool:
    """Stop the spec's cluster (TaskManager first), whatever runs on it; checkpoints stay, so the next
    deploys resume every job. ``streamflow down`` and ``stop_all`` end here."""
    paths = layout(spec, settings)
    with cluster_lock(paths):
        stopped_tm = stop_process(f"flink-{paths.cluster}-taskmanager", paths.taskmanager_pid)
        stopped_jm = stop_process(f"flink-{paths.cluster}-jobmanager", paths.jobmanager_pid)
    if stopped_tm or stopped_jm:
        log.info("flink cluster stopped", cluster=paths.cluster)
    return stopped_tm or stopped_jm
