"""Spec translation for the local Flink runtime: FlinkDeployments turned into one local session
cluster's configuration and environment, and each job's own submission (client configuration,
environment, arguments) and file layout. Pure functions of (spec, settings), unit-tested without
services; the rest of :mod:`streamflow.runtime.flink_local` builds on them.

One cluster, several jobs (ADR 0013): every job of the catalog (:func:`streamflow.catalog.flink_jobs`)
runs on ONE JobManager + TaskManager. A spec's configuration is split by key:

- job level (:data:`JOB_LEVEL_PREFIXES`: checkpointing, state backend and checkpoint dirs, restart
  strategy, pipeline, python, table options) goes with the job's submission (its own client
  ``config.yaml``), so each job keeps its own checkpoints and state backend;
- everything else is cluster level and is merged from all the catalog's specs; a key two specs set to
  different values is refused (:func:`cluster_configuration`), as is a container env variable with two
  values (:func:`cluster_env`): the TaskManager has one process env.

A spec outside the catalog (a benchmark variant) gets a cluster of its own, as before.

Only runtime-bound values are replaced, each listed ONCE with the reason: :data:`LOCAL_OVERRIDES`
(configuration keys), :data:`ENV_OVERRIDES` (container env), the image paths in the arguments and the
topics (bound to the settings by :func:`streamflow.catalog.bind_job_topics`, as on Kubernetes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamflow.catalog import bind_job_topics, flink_jobs
from streamflow.flink_spec import FlinkJobSpec, load_spec
from streamflow.settings import Settings
from streamflow.stack.process import PidFile, ServiceError

#: Flink configuration keys the local runtime replaces, and why. Everything else comes from the spec.
LOCAL_OVERRIDES: dict[str, str] = {
    "execution.checkpointing.interval": "settings.flink_checkpoint_interval_s (10 s locally; the spec's "
    "60 s suits a cluster, locally it would make tests and latency wait a minute)",
    "state.checkpoints.dir": "under the state dir: <state_dir>/flink/<job>/checkpoints (the spec points at a PVC)",
    "state.savepoints.dir": "under the state dir: <state_dir>/flink/<job>/savepoints",
    "python.executable": "the flink venv's python (the spec names the image's /opt/venv/bin/python)",
    "python.client.executable": "the flink venv's python (same reason)",
    "rest.port": "flink_rest_port_base for the catalog's shared cluster; + 1 + n for the n-th spec outside the "
    "catalog (a cluster of its own)",
    "rest.address": "settings.host",
    "rest.bind-address": "settings.host",
    "jobmanager.rpc.address": "settings.host",
    "jobmanager.bind-host": "settings.host",
    "taskmanager.host": "settings.host",
    "taskmanager.bind-host": "settings.host",
    "jobmanager.rpc.port": "REST port + 1000 (the default 6123 would collide between clusters)",
    "jobmanager.memory.process.size": "the largest spec.jobManager.resource.memory of the cluster's jobs",
    "taskmanager.memory.process.size": "the largest spec.taskManager.resource.memory of the cluster's jobs plus "
    "TASKMANAGER_MB_PER_EXTRA_JOB per further job (one TaskManager runs them all; ADR 0013)",
    "taskmanager.numberOfTaskSlots": "max(largest spec value, sum of the cluster's jobs' parallelism): locally one "
    "TaskManager runs every job, the operator would start one cluster per job",
    "io.tmp.dirs": "under the state dir: <cluster_root>/tmp, emptied whenever the cluster starts (Flink's default "
    "is /tmp, where each JobManager/TaskManager left its working dir and python archives behind: measured 7 GB "
    "after a day of runs, enough to fill a CI disk)",
    "env.java.opts.client": "CLIENT_JVM_OPTS: locally each job is submitted by a short-lived `flink run` client JVM "
    "(the operator has none); C1-only JIT and the serial GC halve its planner time (measured: 14 -> 7-9 s a job)",
}

#: JVM flags of the local `flink run` client. It lives ~10 s, mostly planning SQL: C2 compiles that
#: would pay off after minutes only cost CPU here (2 cores shared with the cluster and Airflow).
CLIENT_JVM_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"

#: Configuration keys that belong to a job, not to the cluster: they go with the job's submission (its
#: client config.yaml), never into the cluster's config.yaml. Every other key is cluster level.
JOB_LEVEL_PREFIXES: tuple[str, ...] = (
    "execution.", "state.", "restart-strategy.", "pipeline.", "python.", "table.", "parallelism.",
)

#: TaskManager memory per job beyond the first on the shared cluster (ADR 0013): the largest spec's
#: TaskManager size covers one job's heap, managed memory (used by RocksDB only; the specs use HashMap
#: since ADR 0012) and Python; each further job adds its tasks' share. Measured RSS with three jobs is in
#: the ADR.
TASKMANAGER_MB_PER_EXTRA_JOB = 512

#: The name of the one cluster the catalog's jobs share (directories, pid files, logs).
SHARED_CLUSTER = "pipeline"


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


class FlinkJobError(ServiceError):
    """A local Flink job could not be started or is not running; the message names the log file."""


@dataclass(frozen=True)
class ClusterLayout:
    """Where one job and the cluster it runs on keep their files; all under the state dir.

    Job level: ``root`` (its checkpoints, savepoints, job file and ``conf_dir``, the client configuration
    its ``flink run`` reads) and ``log_dir`` (its submit log). Cluster level (shared by the catalog's
    jobs): ``cluster_root`` (the cluster's ``cluster_conf_dir`` and ``lib_dir``), ``cluster_log_dir``
    (JobManager and TaskManager logs) and the pid files."""

    root: Path
    conf_dir: Path
    lib_dir: Path
    log_dir: Path
    checkpoints_dir: Path
    savepoints_dir: Path
    jobmanager_pid: PidFile
    taskmanager_pid: PidFile
    job_file: Path
    cluster: str
    cluster_root: Path
    cluster_conf_dir: Path
    cluster_log_dir: Path

    @property
    def jobmanager_log(self) -> Path:
        return self.cluster_log_dir / "jobmanager.log"

    @property
    def taskmanager_log(self) -> Path:
        return self.cluster_log_dir / "taskmanager.log"

    @property
    def submit_log(self) -> Path:
        return self.log_dir / "submit.log"

    @property
    def tmp_dir(self) -> Path:
        """Flink's ``io.tmp.dirs`` for the cluster's processes and its jobs' clients: working dirs, blobs,
        python archives. Emptied when the cluster starts, gone with the state dir."""
        return self.cluster_root / "tmp"

    @property
    def lock_file(self) -> Path:
        """Held while the cluster is checked and started: concurrent deploys start it once."""
        return self.cluster_root.parent / f"{self.cluster_root.name}.lock"


def job_index(spec: FlinkJobSpec, all_names: Iterable[str] = ()) -> int:
    """The job's place in the pipeline (:func:`streamflow.catalog.flink_jobs`). A spec outside the
    catalog comes after it, by name (its own cluster's REST port follows from it)."""
    order = [job.name for job in flink_jobs()]
    if spec.name in order:
        return order.index(spec.name)
    extra = sorted(n for n in set(all_names) | {spec.name} if n not in order)
    return len(order) + extra.index(spec.name)


def in_catalog(spec: FlinkJobSpec) -> bool:
    return spec.name in {job.name for job in flink_jobs()}


def cluster_name(spec: FlinkJobSpec) -> str:
    """:data:`SHARED_CLUSTER` for the catalog's jobs; a spec outside the catalog has its own cluster."""
    return SHARED_CLUSTER if in_catalog(spec) else spec.job_key


def cluster_members(spec: FlinkJobSpec) -> list[FlinkJobSpec]:
    """The specs whose jobs share ``spec``'s cluster, ``spec`` itself in its place (so an edited spec,
    e.g. in a test, counts as it is): the catalog's specs in pipeline order, or ``[spec]``."""
    if not in_catalog(spec):
        return [spec]
    return [spec if job.name == spec.name else load_spec(job.spec_path) for job in flink_jobs()]


def rest_port(spec: FlinkJobSpec, settings: Settings) -> int:
    """The REST port of the spec's cluster: the base for the shared cluster, base + 1 + n for the n-th
    spec outside the catalog."""
    if in_catalog(spec):
        return settings.flink_rest_port_base
    return settings.flink_rest_port_base + 1 + job_index(spec) - len(flink_jobs())


def layout(spec: FlinkJobSpec, settings: Settings) -> ClusterLayout:
    root = settings.state_dir / "flink" / spec.job_key
    run = settings.state_dir / "run"
    cluster = cluster_name(spec)
    cluster_root = settings.state_dir / "flink" / f"cluster-{cluster}"
    return ClusterLayout(
        root=root,
        conf_dir=root / "conf",
        lib_dir=cluster_root / "lib",
        log_dir=settings.logs_dir / "flink" / spec.job_key,
        checkpoints_dir=root / "checkpoints",
        savepoints_dir=root / "savepoints",
        jobmanager_pid=PidFile(run / f"flink-cluster-{cluster}-jobmanager.pid"),
        taskmanager_pid=PidFile(run / f"flink-cluster-{cluster}-taskmanager.pid"),
        job_file=root / "job.json",
        cluster=cluster,
        cluster_root=cluster_root,
        cluster_conf_dir=cluster_root / "conf",
        cluster_log_dir=settings.logs_dir / "flink" / f"cluster-{cluster}",
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


def is_job_level(key: str) -> bool:
    return key.startswith(JOB_LEVEL_PREFIXES)


def local_flink_configuration(spec: FlinkJobSpec, settings: Settings) -> dict[str, str]:
    """The spec's flinkConfiguration with exactly the :data:`LOCAL_OVERRIDES` keys replaced (the
    cluster-bound ones with its cluster's values: ports, memory, slots)."""
    paths = layout(spec, settings)
    port = rest_port(spec, settings)
    python = str(flink_venv_python(settings))
    members = cluster_members(spec)
    slots = max(max(int(m.flink_configuration.get("taskmanager.numberOfTaskSlots", "1")) for m in members),
                sum(m.parallelism for m in members))
    jobmanager_mb = max(memory_mb(m.resources.jobmanager_memory, m) for m in members)
    taskmanager_mb = (max(memory_mb(m.resources.taskmanager_memory, m) for m in members)
                      + TASKMANAGER_MB_PER_EXTRA_JOB * (len(members) - 1))
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
        "jobmanager.memory.process.size": f"{jobmanager_mb}m",
        "taskmanager.memory.process.size": f"{taskmanager_mb}m",
        "taskmanager.numberOfTaskSlots": str(slots),
        "io.tmp.dirs": str(paths.tmp_dir),
        "env.java.opts.client": CLIENT_JVM_OPTS,
    }
    assert set(overrides) == set(LOCAL_OVERRIDES), "every override must be documented in LOCAL_OVERRIDES"
    merged = dict(spec.flink_configuration)
    merged.update(overrides)
    return merged


def job_configuration(spec: FlinkJobSpec, settings: Settings) -> dict[str, str]:
    """The job-level part (:data:`JOB_LEVEL_PREFIXES`) of the spec's local configuration: what its
    submission carries (own checkpoint dir, state backend, restart strategy, python options)."""
    return {k: v for k, v in local_flink_configuration(spec, settings).items() if is_job_level(k)}


def cluster_configuration(spec: FlinkJobSpec, settings: Settings) -> dict[str, str]:
    """The cluster-level configuration of ``spec``'s cluster, merged from every member spec.

    A cluster-level key two specs set to different values cannot hold for both jobs: refused, naming
    the key and both files (fix one spec, or make the key job level if Flink reads it per job)."""
    merged: dict[str, str] = {}
    source: dict[str, FlinkJobSpec] = {}
    for member in cluster_members(spec):
        for key, value in local_flink_configuration(member, settings).items():
            if is_job_level(key):
                continue
            if key in merged and merged[key] != value:
                raise FlinkJobError(
                    f"cluster-level Flink option {key} differs between {source[key].source_path} ({merged[key]!r}) "
                    f"and {member.source_path} ({value!r}); the jobs share one local cluster (ADR 0013): give "
                    "both specs the same value"
                )
            merged.setdefault(key, value)
            source.setdefault(key, member)
    return merged


def client_configuration(spec: FlinkJobSpec, settings: Settings) -> dict[str, str]:
    """What the job's ``flink run`` reads: where the cluster is (its cluster-level options) and the job's
    own job-level options."""
    return {**cluster_configuration(spec, settings), **job_configuration(spec, settings)}


def cluster_env(spec: FlinkJobSpec, settings: Settings) -> dict[str, str]:
    """The TaskManager's process env: every member spec's local container env merged. Identical values
    merge; a variable with two values is refused, naming it and both files (one process, one env)."""
    merged: dict[str, str] = {}
    source: dict[str, FlinkJobSpec] = {}
    for member in cluster_members(spec):
        for name, value in local_job_env(member, settings).items():
            if name in merged and merged[name] != value:
                raise FlinkJobError(
                    f"env {name} differs between {source[name].source_path} and {member.source_path}; the jobs "
                    "share one local TaskManager process (ADR 0013): give both specs the same value"
                )
            merged.setdefault(name, value)
            source.setdefault(name, member)
    return merged


def memory_mb(value: str, spec: FlinkJobSpec | None = None) -> int:
    """A Kubernetes/Flink memory quantity ('2Gi', '1536Mi', '1728m', '2g') in MiB."""
    match = re.fullmatch(r"(\d+)\s*(Gi|G|g|Mi|M|m)", value.strip())
    if not match:
        where = f"{spec.source_path}: " if spec is not None else ""
        raise FlinkJobError(f"{where}memory {value!r} is not a quantity like 1728m, 1536Mi or 2Gi")
    number, unit = match.groups()
    return int(number) * (1024 if unit.lower().startswith("g") else 1)


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
                "and has no local value; add it to flink_local_config.ENV_OVERRIDES"
            )
        else:
            env[var.name] = var.value or ""
    return env


def local_job_args(spec: FlinkJobSpec, settings: Settings) -> list[str]:
    """The spec's PythonDriver args with image paths mapped to local paths and the topics the settings
    name (nothing else changes)."""
    python = str(flink_venv_python(settings))
    out = []
    for arg in bind_job_topics(spec.args, settings, where=spec.source_path):
        if arg == IMAGE_PYTHON:
            out.append(python)
        elif arg.startswith(IMAGE_USRLIB + "/"):
            out.append(str(settings.repo_root / arg[len(IMAGE_USRLIB) + 1 :]))
        else:
            out.append(arg)
    return out


#: The state backend of local state whose job file does not name one: every spec said RocksDB (incremental)
#: until ADR 0012's HashMap switch landed, and job files did not record it.
LEGACY_STATE_BACKEND = "rocksdb"


def state_backend(spec: FlinkJobSpec) -> str:
    """The spec's ``state.backend.type`` (Flink's default, hashmap, when it sets none)."""
    return spec.flink_configuration.get("state.backend.type", "hashmap").lower()


def restore_backend_overrides(spec: FlinkJobSpec, recorded: str | None) -> dict[str, str]:
    """Job-level options a resubmission needs so that it restores with the backend its state was written by.

    Why: a checkpoint is in its backend's own format (RocksDB's incremental SST files); Flink restores it
    only into the same backend and switches backends only through a canonical savepoint. After the
    spec's backend changed (ADR 0012: RocksDB -> HashMap), restoring an existing state dir with the new
    backend fails at every restart: a restart loop. So the state keeps the backend it was created with
    until it is switched (:func:`streamflow.runtime.flink_local_lifecycle.switch_state_backend`) or reset.
    ``recorded`` is the job file's backend; None for a job file older than the field (RocksDB then).
    """
    written_by = (recorded or LEGACY_STATE_BACKEND).lower()
    if written_by == state_backend(spec):
        return {}
    overrides = {"state.backend.type": written_by}
    if written_by == "rocksdb":
        overrides["state.backend.incremental"] = "true"
    return overrides


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


def flink_job_name(spec: FlinkJobSpec) -> str:
    """The name Flink reports for the spec's job: its ``--job-name`` argument, else the spec's name (each
    job's default name, ``NAME`` in flink_app/jobs, is its FlinkDeployment's name; a unit test checks it).
    The REST client picks the spec's jobs among the cluster's by it."""
    args = list(spec.job_args)
    if "--job-name" in args and args.index("--job-name") + 1 < len(args):
        return args[args.index("--job-name") + 1]
    return spec.name
