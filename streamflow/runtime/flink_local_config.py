"""Spec translation for the local Flink runtime: a FlinkDeployment turned into one local cluster's
configuration, environment, arguments and file layout. Pure functions of (spec, settings), unit-tested
without services; the rest of :mod:`streamflow.runtime.flink_local` builds on them.

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
from streamflow.flink_spec import FlinkJobSpec
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


class FlinkJobError(ServiceError):
    """A local Flink job could not be started or is not running; the message names the log file."""


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


def job_index(spec: FlinkJobSpec, all_names: Iterable[str] = ()) -> int:
    """The job's place in the pipeline (:func:`streamflow.catalog.flink_jobs`): job i gets REST port
    ``flink_rest_port_base + i``. A spec outside the catalog comes after it, by name."""
    order = [job.name for job in flink_jobs()]
    if spec.name in order:
        return order.index(spec.name)
    extra = sorted(n for n in set(all_names) | {spec.name} if n not in order)
    return len(order) + extra.index(spec.name)


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
