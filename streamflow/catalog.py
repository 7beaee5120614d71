"""The catalog of the pipeline's parts: which jobs, topics, tables and dbt layers exist.

Why: a list of job or model names typed out in a second module is a bug waiting to happen (a
setting that a job never receives, a model a test forgets). The sources of truth are the
FlinkDeployments under ``k8s/base/flink/`` (jobs), the settings (topic names) and the dbt manifest
(models and their layers); this module reads them once and everything else — DAGs, the lineage
graph, the benches and the tests — asks it.

Jobs have two spellings on purpose: the FlinkDeployment's ``metadata.name`` (``fraud-detector``,
a DNS label on Kubernetes) and the logical name used for Airflow task ids, lineage nodes and local
directories (``fraud_detector``). :func:`job` accepts either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from streamflow.flink_spec import SPEC_DIR, FlinkJobSpec, SpecError, load_all

#: Annotation on a FlinkDeployment that fixes its place in the pipeline (deploy order, local ports).
ORDER_ANNOTATION = "streamflow.io/order"

#: Job arguments that name a topic, and the topic role (``Settings.topic_<role>``) each one carries.
TOPIC_ARGS: Mapping[str, str] = {
    "--source-topic": "transactions",
    "--dlq-topic": "dlq",
    "--alerts-topic": "alerts",
    "--metrics-topic": "metrics",
}

#: dbt model folders and the warehouse layer they build (dbt Labs' staging/intermediate/marts).
FOLDER_LAYERS: Mapping[str, str] = {"staging": "silver", "intermediate": "silver", "marts": "gold"}
#: dbt selectors per layer, in build order.
LAYER_SELECTORS: Mapping[str, tuple[str, ...]] = {
    "silver": ("path:models/staging", "path:models/intermediate"),
    "gold": ("path:models/marts",),
}


@dataclass(frozen=True)
class FlinkJob:
    """One logical Flink job, read from its FlinkDeployment."""

    name: str  # logical: transaction_processor
    deployment: str  # metadata.name: transaction-processor
    order: int
    spec: FlinkJobSpec

    @property
    def group_id(self) -> str:
        return self.spec.kafka_group_id

    def topic_roles(self) -> dict[str, str]:
        """``{"--source-topic": "transactions", ...}`` for the topic arguments this job takes."""
        args = self.spec.job_args
        return {arg: role for arg, role in TOPIC_ARGS.items() if arg in args}


def _order(spec: FlinkJobSpec) -> int:
    annotations = (spec.raw.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(ORDER_ANNOTATION)
    if value is None:
        raise SpecError(f"{spec.source_path}: metadata.annotations.{ORDER_ANNOTATION} is missing")
    try:
        return int(value)
    except ValueError:
        raise SpecError(f"{spec.source_path}: {ORDER_ANNOTATION} must be an integer (got {value!r})") from None


@lru_cache(maxsize=4)
def flink_jobs(directory: Path = SPEC_DIR) -> tuple[FlinkJob, ...]:
    """Every Flink job of the pipeline, in pipeline order."""
    jobs = [FlinkJob(spec.job_key, spec.name, _order(spec), spec) for spec in load_all(directory).values()]
    jobs.sort(key=lambda j: (j.order, j.name))
    orders = [j.order for j in jobs]
    if len(set(orders)) != len(orders):
        raise SpecError(f"{directory}: two FlinkDeployments share one {ORDER_ANNOTATION} ({orders})")
    return tuple(jobs)


def job_names(directory: Path = SPEC_DIR) -> tuple[str, ...]:
    """Logical job names (``transaction_processor``, ...) in pipeline order."""
    return tuple(j.name for j in flink_jobs(directory))


def job(name: str, directory: Path = SPEC_DIR) -> FlinkJob:
    """A job by either spelling (``fraud_detector`` or ``fraud-detector``)."""
    wanted = name.replace("-", "_")
    for candidate in flink_jobs(directory):
        if candidate.name == wanted:
            return candidate
    raise SpecError(f"no Flink job {name!r} in {directory} (have: {', '.join(job_names(directory))})")


# ---- dbt ---------------------------------------------------------------------------------------
def layer_of_path(original_file_path: str) -> str | None:
    """``models/marts/fct_x.sql`` -> ``gold``; None outside the layered folders."""
    parts = Path(original_file_path).parts
    for part in parts[1:] if parts and parts[0] == "models" else parts:
        if part in FOLDER_LAYERS:
            return FOLDER_LAYERS[part]
    return None


def models_by_layer(manifest: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """``{"silver": (...), "gold": (...)}``: relation names of the enabled models, from the manifest."""
    out: dict[str, list[str]] = {layer: [] for layer in LAYER_SELECTORS}
    for node in (manifest.get("nodes") or {}).values():
        if node.get("resource_type") != "model" or not (node.get("config") or {}).get("enabled", True):
            continue
        layer = layer_of_path(str(node.get("original_file_path", "")))
        if layer in out:
            out[layer].append(str(node.get("alias") or node.get("name")))
    return {layer: tuple(sorted(names)) for layer, names in out.items()}


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except OSError as error:
        raise FileNotFoundError(f"dbt manifest not found at {path}: run `bin/streamflow prepare`") from error
