"""The pipeline's parts, each read from the one place that defines it; everything else asks here.

- **Flink jobs**: one per FlinkDeployment in ``k8s/base/flink``. A job has two spellings: ``key``
  (``transaction_processor``: DAG task ids, local directories, the CLI) and ``name``
  (``transaction-processor``: the resource). Their order is the spec's ``streamflow.io/pipeline-order``
  annotation: the DAG deploys the jobs in it (locally they share one Flink cluster, ADR 0013).
- **Topics**: named by settings (``STREAMFLOW_TOPIC_*``). The specs and the generator pod template write
  the default names; :data:`JOB_TOPIC_OPTIONS` and :data:`GENERATOR_TOPIC_ENV` say which setting
  replaces each, in both runtimes, so a renamed topic reaches every producer and consumer.
- **dbt layers**: the folder under ``dbt/models`` decides a model's layer (:data:`FOLDER_LAYERS`); the
  models of each layer and the bronze tables come from dbt's manifest, as the lineage graph does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from streamflow.flink_spec import SPEC_DIR, FlinkJobSpec, SpecError, load_all
from streamflow.settings import Settings, get_settings

# ---- Flink jobs ------------------------------------------------------------------------------------
ORDER_ANNOTATION = "streamflow.io/pipeline-order"


@dataclass(frozen=True)
class FlinkJob:
    """One job of the pipeline, as the DAG, the runtimes and the CLI name it."""

    key: str  # transaction_processor
    name: str  # transaction-processor (FlinkDeployment metadata.name)
    order: int  # position in the pipeline: deploy order
    spec_path: Path


def _order(spec: FlinkJobSpec) -> int | None:
    value = ((spec.raw.get("metadata") or {}).get("annotations") or {}).get(ORDER_ANNOTATION)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SpecError(f"{spec.source_path}: {ORDER_ANNOTATION} must be an integer, got {value!r}") from None


@cache
def flink_jobs(directory: Path = SPEC_DIR) -> tuple[FlinkJob, ...]:
    """Every job under ``directory`` in pipeline order (jobs without the annotation last, by name)."""
    specs = list(load_all(directory).values())
    orders = {s.name: _order(s) for s in specs}
    given = [o for o in orders.values() if o is not None]
    if len(given) != len(set(given)):
        raise SpecError(f"{directory}: two FlinkDeployments share a {ORDER_ANNOTATION} value ({sorted(given)})")
    ranked = sorted(specs, key=lambda s: (orders[s.name] is None, orders[s.name] or 0, s.name))
    return tuple(FlinkJob(key=s.job_key, name=s.name, order=i, spec_path=s.source_path) for i, s in enumerate(ranked))


def flink_job_keys() -> tuple[str, ...]:
    """``("transaction_processor", ...)`` in pipeline order: what the DAG builds tasks for."""
    return tuple(job.key for job in flink_jobs())


def flink_job(name: str) -> FlinkJob:
    """A job by either spelling (``fraud_detector`` or ``fraud-detector``)."""
    for job in flink_jobs():
        if name in (job.key, job.name):
            return job
    raise SpecError(f"no Flink job {name!r}; the jobs are {', '.join(flink_job_keys())}")


# ---- topics ----------------------------------------------------------------------------------------
#: Every Flink job option that names a topic (flink_app/jobs parsers), and the setting naming it.
JOB_TOPIC_OPTIONS: dict[str, str] = {
    "--source-topic": "topic_transactions",
    "--alerts-topic": "topic_alerts",
    "--metrics-topic": "topic_metrics",
    "--dlq-topic": "topic_dlq",
}
#: Generator pod env vars that name a topic, and the setting naming it.
GENERATOR_TOPIC_ENV: dict[str, str] = {"GENERATOR_TOPIC": "topic_transactions"}


def _topic(settings: Settings, field: str) -> str:
    return str(getattr(settings, field))


def bind_job_topics(args: Sequence[str], settings: Settings, where: object = "job args") -> list[str]:
    """``args`` with the value of every topic option replaced by the topic the settings name.

    An option ending in ``-topic`` that :data:`JOB_TOPIC_OPTIONS` does not know fails (naming
    ``where``): it would keep its written name when the settings rename the topic.
    """
    out = list(args)
    for i, arg in enumerate(out):
        option, eq, _ = arg.partition("=")
        if not (option.startswith("--") and option.endswith("-topic")):
            continue
        if option not in JOB_TOPIC_OPTIONS:
            raise SpecError(f"{where}: {option} names a topic but no setting does; add it to "
                            "streamflow.catalog.JOB_TOPIC_OPTIONS")
        topic = _topic(settings, JOB_TOPIC_OPTIONS[option])
        if eq:
            out[i] = f"{option}={topic}"
        elif i + 1 < len(out):
            out[i + 1] = topic
        else:
            raise SpecError(f"{where}: {option} has no value")
    return out


def topic_renames(settings: Settings) -> dict[str, str]:
    """Written topic name -> the topic the settings name, for every pipeline topic. The written names are
    the settings' defaults: the specs under k8s/base, the generator's pod template and the dbt sources'
    ``meta`` (the lineage graph) use them, and each is bound here at run time, never edited per stack."""
    fields = set(JOB_TOPIC_OPTIONS.values()) | set(GENERATOR_TOPIC_ENV.values())
    return {str(Settings.model_fields[f].default): _topic(settings, f) for f in sorted(fields)}


def bind_generator_env(env: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """The generator's env with every topic variable set to the topic the settings name."""
    return {**env, **{name: _topic(settings, field) for name, field in GENERATOR_TOPIC_ENV.items()}}


# ---- dbt layers and models -------------------------------------------------------------------------
#: Folder under dbt/models → warehouse layer (dbt Labs' staging/intermediate/marts structure).
FOLDER_LAYERS: dict[str, str] = {"staging": "silver", "intermediate": "silver", "marts": "gold"}
LAYERS = ("bronze", "silver", "gold")


def dbt_folder_selectors() -> dict[str, str]:
    """``{"staging": "path:models/staging", ...}``: one dbt selector per model folder."""
    return {folder: f"path:models/{folder}" for folder in FOLDER_LAYERS}


def dbt_selectors(*layers: str) -> list[str]:
    """The dbt selectors of the models in ``layers`` (``"silver"``, ``"gold"``), in folder order."""
    unknown = set(layers) - set(FOLDER_LAYERS.values())
    if unknown:
        raise ValueError(f"no dbt models in layer(s) {sorted(unknown)}; layers: {sorted(set(FOLDER_LAYERS.values()))}")
    return [selector for folder, selector in dbt_folder_selectors().items() if FOLDER_LAYERS[folder] in layers]


class ManifestNotFound(FileNotFoundError):
    """No manifest yet: `streamflow prepare` (dbt parse) or bootstrap_pipeline has not run."""


def manifest_candidates(settings: Settings) -> list[Path]:
    """Published docs manifest (bootstrap_pipeline) first, then the set-up one (`dbt parse`)."""
    return [settings.dbt_docs_dir / "manifest.json", settings.dbt_target_dir / "manifest.json"]


def manifest_path(settings: Settings) -> Path:
    """The newest existing manifest: docs are republished per pipeline run, parse output per set-up."""
    existing = [p for p in manifest_candidates(settings) if p.is_file()]
    if not existing:
        raise ManifestNotFound(
            "no dbt manifest at " + " or ".join(str(p) for p in manifest_candidates(settings))
            + ": run `streamflow prepare` or the bootstrap_pipeline DAG"
        )
    return max(existing, key=lambda p: p.stat().st_mtime)


def load_manifest(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a dbt manifest (top level is not an object)")
    return data


def layer_of(node: dict[str, Any]) -> str:
    """A manifest node's layer: its folder under models/ (:data:`FOLDER_LAYERS`), else its schema."""
    path = str(node.get("original_file_path") or node.get("path") or "")
    parts = Path(path).parts
    if parts and parts[0] == "models":
        parts = parts[1:]
    for part in parts[:-1]:
        if part in FOLDER_LAYERS:
            return FOLDER_LAYERS[part]
    schema = str(node.get("schema") or "")
    for layer in LAYERS:
        if schema == layer or schema.endswith(f"_{layer}"):
            return layer
    return "other"


def _own(manifest: dict[str, Any], node: dict[str, Any]) -> bool:
    project = str((manifest.get("metadata") or {}).get("project_name") or "")
    return not project or node.get("package_name") in (None, project)


def layer_tables(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """``{"bronze": [source tables], "silver": [models], "gold": [models]}`` of this dbt project,
    each sorted; the warehouse relation of a table is ``<layer>.<name>``."""
    tables: dict[str, list[str]] = {layer: [] for layer in LAYERS}
    for source in (manifest.get("sources") or {}).values():
        if _own(manifest, source) and source.get("schema") == "bronze":
            tables["bronze"].append(str(source.get("identifier") or source.get("name")))
    for node in (manifest.get("nodes") or {}).values():
        if node.get("resource_type") == "model" and _own(manifest, node):
            layer = layer_of(node)
            if layer in ("silver", "gold"):
                tables[layer].append(str(node.get("alias") or node.get("name")))
    return {layer: sorted(names) for layer, names in tables.items()}


class ManifestLayerTables(Mapping[str, list[str]]):
    """:func:`layer_tables` of the current manifest, read when first used (a task runs), not at import
    (a DAG file or the CLI imports the modules that hold it before any manifest exists)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._cached: tuple[tuple[Path, float], dict[str, list[str]]] | None = None

    def _tables(self) -> dict[str, list[str]]:
        path = manifest_path(self._settings or get_settings())
        key = (path, path.stat().st_mtime)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, layer_tables(load_manifest(path)))
        return self._cached[1]

    def __getitem__(self, layer: str) -> list[str]:
        return self._tables()[layer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables())

    def __len__(self) -> int:
        return len(self._tables())


#: The tables of every layer (bronze sources, silver and gold models), from the manifest.
LAYER_TABLES = ManifestLayerTables()
