"""Typed view of a Flink Kubernetes Operator ``FlinkDeployment`` manifest.

The manifests in ``k8s/base/flink/`` are the single source of truth for every Flink job: the
operator runs them on Kubernetes, and the local runtime (``streamflow.runtime.flink_local``) reads
the very same files through this module. Nothing here knows about either runtime; it only turns
YAML into a small frozen object and fails early, naming the file, when the manifest is not usable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

API_VERSION = "flink.apache.org/v1beta1"
KIND = "FlinkDeployment"
MAIN_CONTAINER = "flink-main-container"
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
SPEC_DIR = Path(__file__).resolve().parent.parent / "k8s" / "base" / "flink"


class SpecError(ValueError):
    """A manifest that cannot be run; the message names the file and the field."""


@dataclass(frozen=True)
class EnvVar:
    """One container env entry: a literal ``value`` or a ``secretKeyRef`` resolved by the runtime."""

    name: str
    value: str | None = None
    secret_name: str | None = None
    secret_key: str | None = None

    @property
    def from_secret(self) -> bool:
        return self.secret_name is not None


@dataclass(frozen=True)
class Resources:
    """JobManager/TaskManager sizes exactly as the operator maps them to Flink memory options."""

    jobmanager_memory: str
    jobmanager_cpu: float
    taskmanager_memory: str
    taskmanager_cpu: float


@dataclass(frozen=True)
class FlinkJobSpec:
    """Everything a runtime needs to run one job, read from one FlinkDeployment."""

    name: str
    namespace: str
    image: str
    flink_version: str
    parallelism: int
    jar_uri: str
    entry_class: str
    args: tuple[str, ...]
    upgrade_mode: str
    flink_configuration: dict[str, str]
    env: tuple[EnvVar, ...]
    resources: Resources
    source_path: Path
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def kafka_group_id(self) -> str:
        """The Kafka consumer group the job commits its source offsets under (``--group-id``)."""
        return _arg_value(self.args, "--group-id") or ""

    @property
    def python_module(self) -> str:
        """The ``-pym`` module of a PythonDriver job (``flink_app.jobs.fraud_detector``)."""
        return _arg_value(self.args, "-pym") or ""

    @property
    def job_args(self) -> tuple[str, ...]:
        """The arguments after the PythonDriver options: what the job's own parser sees."""
        args = list(self.args)
        driver_options = {"-pyclientexec", "-pym", "-py", "-pyfs", "-pyarch", "-pyreq", "-pyexec"}
        i = 0
        while i < len(args) and args[i] in driver_options:
            i += 2
        return tuple(args[i:])

    @property
    def job_key(self) -> str:
        """Python-friendly name (``fraud_detector``) used for local directories and pid files."""
        return self.name.replace("-", "_")

    def env_value(self, name: str) -> str | None:
        for var in self.env:
            if var.name == name:
                return var.value
        return None


def _arg_value(args: tuple[str, ...], option: str) -> str | None:
    for i, arg in enumerate(args[:-1]):
        if arg == option:
            return args[i + 1]
    return None


def _require(mapping: Any, key: str, where: str, path: Path) -> Any:
    if not isinstance(mapping, dict) or key not in mapping or mapping[key] is None:
        raise SpecError(f"{path}: missing {where}.{key}")
    return mapping[key]


def _parse_env(pod_template: dict[str, Any], path: Path) -> tuple[EnvVar, ...]:
    containers = (pod_template.get("spec") or {}).get("containers") or []
    main = next((c for c in containers if c.get("name") == MAIN_CONTAINER), None)
    if main is None:
        return ()
    result = []
    for item in main.get("env") or []:
        name = _require(item, "name", "podTemplate...env[]", path)
        if "value" in item:
            result.append(EnvVar(name=name, value=str(item["value"])))
            continue
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if not ref:
            raise SpecError(f"{path}: env {name} needs 'value' or 'valueFrom.secretKeyRef'")
        result.append(EnvVar(name=name, secret_name=ref["name"], secret_key=ref["key"]))
    return tuple(result)


def parse_spec(document: dict[str, Any], path: Path) -> FlinkJobSpec:
    """Validate and convert one parsed FlinkDeployment document."""
    if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
        raise SpecError(f"{path}: not a {API_VERSION} {KIND}")
    metadata = _require(document, "metadata", "", path)
    spec = _require(document, "spec", "", path)
    job = _require(spec, "job", "spec", path)
    jm = (_require(spec, "jobManager", "spec", path).get("resource")) or {}
    tm = (_require(spec, "taskManager", "spec", path).get("resource")) or {}
    parallelism = int(_require(job, "parallelism", "spec.job", path))
    if parallelism < 1:
        raise SpecError(f"{path}: spec.job.parallelism must be >= 1 (got {parallelism})")
    configuration = {str(k): str(v) for k, v in (spec.get("flinkConfiguration") or {}).items()}
    return FlinkJobSpec(
        name=str(_require(metadata, "name", "metadata", path)),
        namespace=str(metadata.get("namespace", "default")),
        image=str(_require(spec, "image", "spec", path)),
        flink_version=str(_require(spec, "flinkVersion", "spec", path)),
        parallelism=parallelism,
        jar_uri=str(_require(job, "jarURI", "spec.job", path)),
        entry_class=str(job.get("entryClass", PYTHON_DRIVER)),
        args=tuple(str(a) for a in job.get("args") or ()),
        upgrade_mode=str(job.get("upgradeMode", "stateless")),
        flink_configuration=configuration,
        env=_parse_env(spec.get("podTemplate") or {}, path),
        resources=Resources(
            jobmanager_memory=str(jm.get("memory", "1024m")),
            jobmanager_cpu=float(jm.get("cpu", 1)),
            taskmanager_memory=str(tm.get("memory", "1728m")),
            taskmanager_cpu=float(tm.get("cpu", 1)),
        ),
        source_path=path,
        raw=document,
    )


def load_spec(path: Path | str) -> FlinkJobSpec:
    """Load one FlinkDeployment YAML file."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SpecError(f"{path}: cannot read FlinkDeployment ({error})") from error
    if not isinstance(document, dict):
        raise SpecError(f"{path}: empty or not a mapping")
    return parse_spec(document, path)


def load_all(directory: Path = SPEC_DIR) -> dict[str, FlinkJobSpec]:
    """Every FlinkDeployment in ``directory`` keyed by metadata.name (other kinds are skipped)."""
    specs: dict[str, FlinkJobSpec] = {}
    for path in sorted(directory.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if isinstance(document, dict) and document.get("kind") == KIND:
            spec = parse_spec(document, path)
            specs[spec.name] = spec
    return specs


def spec_for(name: str, directory: Path = SPEC_DIR) -> FlinkJobSpec:
    """The spec of one job by its metadata.name (``fraud-detector``) or module name (``fraud_detector``)."""
    specs = load_all(directory)
    key = name.replace("_", "-")
    if key not in specs:
        raise SpecError(f"no FlinkDeployment named {key!r} in {directory} (have: {', '.join(sorted(specs))})")
    return specs[key]
