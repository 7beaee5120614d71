"""The local runtime for Flink jobs: one small standalone Flink cluster per FlinkDeployment.

Why one cluster per job: a second thread-mode PyFlink job on the same cluster crashes while pemja
reloads libpython (``NoSuchFieldException: loadedLibraryNames``). So every job gets its own
JobManager + TaskManager started from the PyFlink pip package (``pyflink/bin``, ``pyflink/lib``),
its own ``FLINK_CONF_DIR``, lib dir (the package's jars + the connector jars from the pom), log
files, checkpoint directory and REST port.

Single source of truth: the job's arguments, parallelism, Flink configuration, resources and
environment are read from ``k8s/base/flink/<job>.yaml``. Only runtime-bound values are replaced;
they are listed ONCE, in :data:`LOCAL_OVERRIDES` (configuration keys) and :data:`ENV_OVERRIDES`
(container env), each with the reason. A change to the YAML therefore shows in the local run.

Processes are started with :mod:`streamflow.stack.process` (own session, pid files with start
times), so ``stop`` works after a crash and leaves no orphan JVM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamflow.flink_spec import FlinkJobSpec, load_all
from streamflow.logs import get_log
from streamflow.settings import Settings
from streamflow.stack.process import PidFile, ServiceError, spawn, tail, wait_until
from streamflow.stack.process import stop as stop_process

log = get_log("streamflow.flink")

#: Deterministic job order: job i gets REST port ``flink_rest_port_base + i``.
JOB_ORDER: tuple[str, ...] = ("transaction-processor", "fraud-detector", "realtime-aggregator")

#: Flink configuration keys the local runtime replaces, and why. Everything else comes from the spec.
LOCAL_OVERRIDES: dict[str, str] = {
    "execution.checkpointing.interval": "settings.flink_checkpoint_interval_s (10 s locally; the spec's "
    "60 s suits a cluster, locally it would make tests and latency wait a minute)",
    "state.checkpoints.dir": "under the state dir: <state_dir>/flink/<job>/checkpoints (the spec points at a PVC)",
    "state.savepoints.dir": "under the state dir: <state_dir>/flink/<job>/savepoints",
    "python.executable": "the flink venv's python (the spec names the image's /opt/venv/bin/python)",
    "python.client.executable": "the flink venv's python (same reason)",
    "rest.port": "flink_rest_port_base + job index (one cluster per job on one machine)",
    "rest.address": "settings.host",
    "rest.bind-address": "settings.host",
    "jobmanager.rpc.address": "settings.host",
    "jobmanager.bind-host": "settings.host",
    "taskmanager.host": "settings.host",
    "taskmanager.bind-host": "settings.host",
    "jobmanager.rpc.port": "REST port + 1000 (the default 6123 would collide between clusters)",
    "jobmanager.memory.process.size": "from spec.jobManager.resource.memory (what the operator does)",
    "taskmanager.memory.process.size": "from spec.taskManager.resource.memory (what the operator does)",
    "taskmanager.numberOfTaskSlots": "max(spec value, parallelism): locally there is one TaskManager, "
    "the operator would start more",
}

#: Container env vars whose value is an endpoint, credential or path of the Kubernetes runtime.
ENV_OVERRIDES: dict[str, str] = {
    "KAFKA_BOOTSTRAP_SERVERS": "settings.kafka_bootstrap",
    "WAREHOUSE_JDBC_URL": "settings.warehouse_jdbc_url",
    "WAREHOUSE_USER": "settings.postgres_user (a Secret on Kubernetes)",
    "WAREHOUSE_PASSWORD": "settings.resolved_postgres_password (a Secret on Kubernetes)",  # pragma: allowlist secret
    "PYTHONPATH": "the repo root (the image has flink_app under /opt/flink/usrlib)",
    "STREAMFLOW_EVENT_SCHEMA": "generator/schema/transaction.v1.schema.json in the repo",
}

#: Spec argument values that are image paths, mapped to their local equivalents.
IMAGE_PYTHON = "/opt/venv/bin/python"
IMAGE_USRLIB = "/opt/flink/usrlib"

ACTIVE_STATES = {"INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "RECONCILING"}
TERMINAL_STATES = {"FAILED", "CANCELED", "FINISHED", "SUSPENDED"}


class FlinkJobError(ServiceError):
    """A local Flink job could not be started or is not running; the message names the log file."""


@dataclass(frozen=True)
class JobHandle:
    """What the DAG tasks and the CLI need to find a running local job again."""

    name: str
    job_id: str
    rest_url: str
    state: str
    log_dir: Path


@dataclass(frozen=True)
class ClusterLayout:
    """Where one job's cluster keeps its files; all under the state dir."""

    root: Path
    conf_dir: Path
    lib_dir: Path
    log_dir: Path
    checkpoints_dir: Path
    savepoints_dir: Path
    jobmanager_pid: PidFile
    taskmanager_pid: PidFile
    job_file: Path

    @property
    def jobmanager_log(self) -> Path:
        return self.log_dir / "jobmanager.log"

    @property
    def taskmanager_log(self) -> Path:
        return self.log_dir / "taskmanager.log"

    @property
    def submit_log(self) -> Path:
        return self.log_dir / "submit.log"


# ---- pure builders (unit-tested without services) ------------------------------------------------
def job_index(spec: FlinkJobSpec, all_names: Iterable[str] = ()) -> int:
    if spec.name in JOB_ORDER:
        return JOB_ORDER.index(spec.name)
    extra = sorted(n for n in set(all_names) | {spec.name} if n not in JOB_ORDER)
    return len(JOB_ORDER) + extra.index(spec.name)


def rest_port(spec: FlinkJobSpec, settings: Settings) -> int:
    return settings.flink_rest_port_base + job_index(spec)


def layout(spec: FlinkJobSpec, settings: Settings) -> ClusterLayout:
    root = settings.state_dir / "flink" / spec.job_key
    run = settings.state_dir / "run"
    return ClusterLayout(
        root=root,
        conf_dir=root / "conf",
        lib_dir=root / "lib",
        log_dir=settings.logs_dir / "flink" / spec.job_key,
        checkpoints_dir=root / "checkpoints",
        savepoints_dir=root / "savepoints",
        jobmanager_pid=PidFile(run / f"flink-{spec.job_key}-jobmanager.pid"),
        taskmanager_pid=PidFile(run / f"flink-{spec.job_key}-taskmanager.pid"),
        job_file=root / "job.json",
    )


def flink_venv_python(settings: Settings) -> Path:
    return settings.venv_python("flink")


def pyflink_home(settings: Settings) -> Path:
    """The PyFlink package dir in the flink venv (it is a complete Flink distribution)."""
    matches = sorted((settings.venvs_dir / "flink" / "lib").glob("python3*/site-packages/pyflink"))
    if not matches:
        raise FlinkJobError(
            f"PyFlink not found under {settings.venvs_dir / 'flink'}; run `make setup` to create the flink venv"
        )
    return matches[0]


def local_flink_configuration(spec: FlinkJobSpec, settings: Settings) -> dict[str, str]:
    """The spec's flinkConfiguration with exactly the :data:`LOCAL_OVERRIDES` keys replaced."""
    paths = layout(spec, settings)
    port = rest_port(spec, settings)
    python = str(flink_venv_python(settings))
    slots = max(int(spec.flink_configuration.get("taskmanager.numberOfTaskSlots", "1")), spec.parallelism)
    overrides = {
        "execution.checkpointing.interval": f"{settings.flink_checkpoint_interval_s}s",
        "state.checkpoints.dir": paths.checkpoints_dir.as_uri(),
        "state.savepoints.dir": paths.savepoints_dir.as_uri(),
        "python.executable": python,
        "python.client.executable": python,
        "rest.port": str(port),
        "rest.address": settings.host,
        "rest.bind-address": settings.host,
        "jobmanager.rpc.address": settings.host,
        "jobmanager.bind-host": settings.host,
        "taskmanager.host": settings.host,
        "taskmanager.bind-host": settings.host,
        "jobmanager.rpc.port": str(port + 1000),
        "jobmanager.memory.process.size": _memory(spec.resources.jobmanager_memory),
        "taskmanager.memory.process.size": _memory(spec.resources.taskmanager_memory),
        "taskmanager.numberOfTaskSlots": str(slots),
    }
    assert set(overrides) == set(LOCAL_OVERRIDES), "every override must be documented in LOCAL_OVERRIDES"
    merged = dict(spec.flink_configuration)
    merged.update(overrides)
    return merged


def _memory(value: str) -> str:
    """Kubernetes quantities ('2Gi', '1536Mi', '1728m') to Flink memory sizes ('2g', '1536m')."""
    match = re.fullmatch(r"(\d+)\s*(Gi|G|g|Mi|M|m)", value.strip())
    if not match:
        return value
    number, unit = match.groups()
    return f"{number}{'g' if unit.lower().startswith('g') else 'm'}"


def local_job_env(spec: FlinkJobSpec, settings: Settings) -> dict[str, str]:
    """The spec's container env with :data:`ENV_OVERRIDES` applied (secrets resolved from settings)."""
    replacements = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap,
        "WAREHOUSE_JDBC_URL": settings.warehouse_jdbc_url,
        "WAREHOUSE_USER": settings.postgres_user,
        "WAREHOUSE_PASSWORD": settings.resolved_postgres_password,
        "PYTHONPATH": str(settings.repo_root),
        "STREAMFLOW_EVENT_SCHEMA": str(settings.repo_root / "generator" / "schema" / "transaction.v1.schema.json"),
    }
    assert set(replacements) == set(ENV_OVERRIDES), "every env override must be documented in ENV_OVERRIDES"
    env: dict[str, str] = {}
    for var in spec.env:
        if var.name in replacements:
            env[var.name] = replacements[var.name]
        elif var.from_secret:
            raise FlinkJobError(
                f"{spec.source_path}: env {var.name} comes from Secret {var.secret_name}/{var.secret_key} "
                "and has no local value; add it to flink_local.ENV_OVERRIDES"
            )
        else:
            env[var.name] = var.value or ""
    return env


def local_job_args(spec: FlinkJobSpec, settings: Settings) -> list[str]:
    """The spec's PythonDriver args with image paths mapped to local paths (nothing else changes)."""
    python = str(flink_venv_python(settings))
    out = []
    for arg in spec.args:
        if arg == IMAGE_PYTHON:
            out.append(python)
        elif arg.startswith(IMAGE_USRLIB + "/"):
            out.append(str(settings.repo_root / arg[len(IMAGE_USRLIB) + 1 :]))
        else:
            out.append(arg)
    return out


def submit_command(spec: FlinkJobSpec, settings: Settings, restore_from: Path | None = None) -> list[str]:
    """``flink run`` for the spec: detached, spec parallelism, the spec's PythonDriver args."""
    home = pyflink_home(settings)
    cmd = [str(home / "bin" / "flink"), "run", "--detached", "--parallelism", str(spec.parallelism)]
    if restore_from is not None:
        cmd += ["--fromSavepoint", str(restore_from), "--allowNonRestoredState"]
    return cmd + local_job_args(spec, settings)


def render_config_yaml(configuration: dict[str, str], base: dict[str, str]) -> str:
    """Flat ``key: "value"`` YAML (Flink 1.20's config.yaml accepts flat keys)."""
    merged = dict(base)
    merged.update(configuration)
    lines = ["# Generated by streamflow.runtime.flink_local from the FlinkDeployment spec; do not edit."]
    lines += [f"{key}: {json.dumps(str(value))}" for key, value in sorted(merged.items())]
    return "\n".join(lines) + "\n"


def flatten_yaml(document: Any, prefix: str = "") -> dict[str, str]:
    if not isinstance(document, dict):
        return {prefix: str(document)} if prefix else {}
    out: dict[str, str] = {}
    for key, value in document.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten_yaml(value, name))
        elif isinstance(value, list):
            out[name] = ";".join(str(v) for v in value)
        else:
            out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


# ---- cluster files -------------------------------------------------------------------------------
def _prepare_cluster_dir(spec: FlinkJobSpec, settings: Settings) -> ClusterLayout:
    import yaml  # only where the cluster is prepared; the DAG import path stays light

    paths = layout(spec, settings)
    home = pyflink_home(settings)
    for directory in (paths.conf_dir, paths.lib_dir, paths.log_dir, paths.checkpoints_dir, paths.savepoints_dir):
        directory.mkdir(parents=True, exist_ok=True)
    base = flatten_yaml(yaml.safe_load((home / "conf" / "config.yaml").read_text()) or {})
    (paths.conf_dir / "config.yaml").write_text(render_config_yaml(local_flink_configuration(spec, settings), base))
    for name in ("log4j-console.properties", "log4j-cli.properties", "log4j.properties", "logback-console.xml"):
        source = home / "conf" / name
        if source.exists():
            (paths.conf_dir / name).write_text(source.read_text())
    connector_dir = settings.jars_dir / "flink"
    # flink-python in lib/ (not only in the job jar): pemja must be loaded once per TaskManager, or a task
    # restarted in the same TaskManager fails (see classloader.parent-first-patterns.additional in the spec)
    jars = (sorted((home / "lib").glob("*.jar")) + sorted((home / "opt").glob("flink-python-*.jar"))
            + sorted(connector_dir.glob("*.jar")))
    if not list(connector_dir.glob("flink-connector-kafka-*.jar")):
        raise FlinkJobError(
            f"no connector jars in {connector_dir}; run `make setup` (Maven resolves flink_app/pom.xml)"
        )
    for old in paths.lib_dir.glob("*.jar"):
        old.unlink()
    for jar in jars:
        (paths.lib_dir / jar.name).symlink_to(jar)
    return paths


def _process_env(spec: FlinkJobSpec, settings: Settings, paths: ClusterLayout) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLINK_", "PYFLINK_", "VIRTUAL_ENV"))}
    venv_bin = flink_venv_python(settings).parent
    env.update(
        {
            "FLINK_CONF_DIR": str(paths.conf_dir),
            "FLINK_LIB_DIR": str(paths.lib_dir),
            "FLINK_LOG_DIR": str(paths.log_dir),
            "FLINK_PID_DIR": str(paths.root),
            "PATH": f"{venv_bin}:{env.get('PATH', '/usr/bin:/bin')}",
            "TZ": "UTC",
        }
    )
    env.update(local_job_env(spec, settings))
    return env


# ---- REST ----------------------------------------------------------------------------------------
def rest_url(spec: FlinkJobSpec, settings: Settings) -> str:
    return f"http://{settings.host}:{rest_port(spec, settings)}"


def _get_json(url: str, timeout_s: float = 3.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - loopback http only
        return json.loads(response.read())


def jobs_overview(spec: FlinkJobSpec, settings: Settings) -> list[dict[str, Any]]:
    """``/jobs/overview`` of the job's cluster; [] if the cluster does not answer."""
    try:
        data = _get_json(f"{rest_url(spec, settings)}/jobs/overview")
    except (OSError, urllib.error.URLError, ValueError):
        return []
    return list(data.get("jobs", []))


def _cluster_ready(spec: FlinkJobSpec, settings: Settings) -> bool:
    data = _get_json(f"{rest_url(spec, settings)}/overview")
    return int(data.get("taskmanagers", 0)) >= 1 and int(data.get("slots-total", 0)) >= spec.parallelism


class RestUnavailable(FlinkJobError):
    """The JobManager process is alive but its REST API did not answer (starting, overloaded, hung)."""


def cluster_alive(spec: FlinkJobSpec, settings: Settings) -> bool:
    """Whether this job's JobManager process (from its pid file) is alive."""
    return layout(spec, settings).jobmanager_pid.alive_pid() is not None


def current_job_id(spec: FlinkJobSpec, settings: Settings) -> str | None:
    """The job this spec's cluster runs now (active first, then the recorded one), or None."""
    jobs = jobs_overview(spec, settings)
    current = _current_job(spec, settings, jobs) if jobs else None
    return str(current["jid"]) if current else None


def job_rest_documents(spec: FlinkJobSpec, settings: Settings, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """The raw REST documents :mod:`streamflow.flink_health` reads for the current job, or None if the
    cluster runs no job. ``detail`` must answer (else :class:`RestUnavailable`); the others are
    best-effort (None when missing) so the health rules can say *what* is unknown."""
    base = rest_url(spec, settings)
    try:
        overview = _get_json(f"{base}/jobs/overview", timeout_s)
    except (OSError, urllib.error.URLError, ValueError) as error:
        raise RestUnavailable(f"GET {base}/jobs/overview: {error}") from None
    jobs = list(overview.get("jobs", []))
    current = _current_job(spec, settings, jobs) if jobs else None
    if current is None:
        return None
    jid = str(current["jid"])
    try:
        detail = _get_json(f"{base}/jobs/{jid}", timeout_s)
    except (OSError, urllib.error.URLError, ValueError) as error:
        raise RestUnavailable(f"GET {base}/jobs/{jid}: {error}") from None
    documents: dict[str, Any] = {"detail": detail}
    for key, path in (("checkpoints", "checkpoints"), ("exceptions", "exceptions?maxExceptions=5"),
                      ("metrics", "metrics?get=numRestarts")):
        try:
            documents[key] = _get_json(f"{base}/jobs/{jid}/{path}", timeout_s)
        except (OSError, urllib.error.URLError, ValueError):
            documents[key] = None
    return documents


def cancel_job(spec: FlinkJobSpec, settings: Settings, job_id: str, timeout_s: float = 60.0) -> str:
    """Cancel a job through REST (``PATCH /jobs/<jid>?mode=cancel``) and wait for a terminal state.

    Retained checkpoints survive a cancel (``RETAIN_ON_CANCELLATION`` in the spec), so the next
    :func:`submit` resumes from the latest one.
    """
    base = rest_url(spec, settings)
    request = urllib.request.Request(f"{base}/jobs/{job_id}?mode=cancel", method="PATCH")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback http only
            response.read()
    except urllib.error.HTTPError as error:
        if error.code != 404:  # 404: the job is gone already
            raise FlinkJobError(f"cancelling {spec.name} ({job_id}) failed: HTTP {error.code} {error.reason}") from None
    deadline = time.monotonic() + timeout_s
    state = "UNKNOWN"
    while time.monotonic() < deadline:
        state = next((str(j.get("state")) for j in jobs_overview(spec, settings) if j.get("jid") == job_id),
                     "CANCELED")
        if state in TERMINAL_STATES:
            return state
        time.sleep(1.0)
    raise FlinkJobError(f"{spec.name} ({job_id}) still {state} {timeout_s:.0f} s after cancel; "
                        f"see {layout(spec, settings).jobmanager_log}")


def job_state(spec: FlinkJobSpec, settings: Settings) -> str:
    """State of this spec's current job: RUNNING, FAILED, ... or NOT_DEPLOYED / CLUSTER_DOWN."""
    if layout(spec, settings).jobmanager_pid.alive_pid() is None:
        return "CLUSTER_DOWN"
    jobs = jobs_overview(spec, settings)
    if not jobs:
        return "NOT_DEPLOYED"
    current = _current_job(spec, settings, jobs)
    return str(current["state"]) if current else "NOT_DEPLOYED"


def _current_job(spec: FlinkJobSpec, settings: Settings, jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    active = [j for j in jobs if j.get("state") in ACTIVE_STATES]
    if active:
        return active[0]
    recorded = _recorded_job_id(spec, settings)
    for job in jobs:
        if job.get("jid") == recorded:
            return job
    return max(jobs, key=lambda j: int(j.get("start-time", 0))) if jobs else None


def _recorded_job_id(spec: FlinkJobSpec, settings: Settings) -> str | None:
    try:
        return str(json.loads(layout(spec, settings).job_file.read_text())["job_id"])
    except (OSError, ValueError, KeyError):
        return None


# ---- lifecycle -----------------------------------------------------------------------------------
def start_cluster(spec: FlinkJobSpec, settings: Settings, timeout_s: float | None = None) -> ClusterLayout:
    """Start the job's JobManager and TaskManager (no-op for the parts already running).

    Waits ``timeout_s``, by default ``STREAMFLOW_SERVICE_START_TIMEOUT_S`` (at least 90 s): three
    clusters starting together on a loaded 2-core host took over 90 s (measured in the e2e run).
    """
    timeout_s = timeout_s if timeout_s is not None else max(90.0, float(settings.service_start_timeout_s))
    paths = _prepare_cluster_dir(spec, settings)
    env = _process_env(spec, settings, paths)
    bin_dir = pyflink_home(settings) / "bin"
    if paths.jobmanager_pid.alive_pid() is None:
        spawn(
            f"flink-{spec.name}-jobmanager",
            ["bash", str(bin_dir / "jobmanager.sh"), "start-foreground"],
            pid_file=paths.jobmanager_pid,
            log_file=paths.jobmanager_log,
            env=env,
            cwd=paths.root,
        )
    if paths.taskmanager_pid.alive_pid() is None:
        spawn(
            f"flink-{spec.name}-taskmanager",
            ["bash", str(bin_dir / "taskmanager.sh"), "start-foreground"],
            pid_file=paths.taskmanager_pid,
            log_file=paths.taskmanager_log,
            env=env,
            cwd=paths.root,
        )
    try:
        wait_until(
            f"flink cluster {spec.name}",
            lambda: _cluster_ready(spec, settings),
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
    env = _process_env(spec, settings, paths)
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
    from streamflow.flink_health import Verdict, local_health, sensor_decision

    paths = layout(spec, settings)
    job_id = job_id or _recorded_job_id(spec, settings)
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
    from streamflow.flink_health import local_health, needs_redeploy

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


def stop_all(settings: Settings) -> list[str]:
    """Stop every local job cluster (specs from k8s/base/flink plus any pid file left behind)."""
    stopped = [spec.name for spec in load_all().values() if stop(spec, settings)]
    for pid_path in (settings.state_dir / "run").glob("flink-*.pid"):
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
    wanted = list(names) if names is not None else [n for n in JOB_ORDER if n in specs]
    handles = []
    for name in wanted:
        handle = deploy(specs[name.replace("_", "-")], settings)
        if on_deployed:
            on_deployed(handle)
        handles.append(handle)
    return handles
