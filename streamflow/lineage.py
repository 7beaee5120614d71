"""End-to-end lineage of the platform, derived from dbt's manifest.json - never from a hand-kept list.

dbt knows bronze → silver → gold → exposures. The streaming half (generator → Kafka topic → Flink job
→ bronze table) is declared once, on each bronze source, in its ``meta``::

    meta: {producer: generator, kafka_topic: transactions.raw, flink_job: fraud_detector,
           output_topic: fraud.alerts}

so adding a source, a model or an exposure in ``dbt/`` is enough for it to show in the portal. The
topics there are the written (default) names; :func:`build_graph` draws the topics the stack really uses
(``topics``: :func:`streamflow.catalog.topic_renames`), as the runtimes bind them into the jobs.
Pure functions over the manifest dict: the Airflow plugin, the CLI and tests share them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from streamflow.catalog import layer_of  # the manifest and the layer of a node belong to the catalog

DBT_RESOURCES = ("model", "seed", "snapshot")  # resources that Cosmos turns into Airflow tasks

# Source meta keys describing the streaming path into a bronze table.
META_PRODUCER = "producer"
META_TOPIC = "kafka_topic"
META_FLINK_JOB = "flink_job"
META_OUTPUT_TOPICS = ("output_topic", "dlq_topic")


@dataclass(frozen=True)
class LineageNode:
    """One box of the graph; ``docs_anchor`` is the dbt docs route (``#!/model/<unique_id>``)."""

    id: str
    label: str
    kind: str  # producer | topic | flink_job | source | model | seed | snapshot | exposure
    layer: str  # stream | bronze | silver | gold | consumer
    unique_id: str | None = None
    relation: str | None = None  # schema.table in the warehouse
    docs_anchor: str | None = None
    description: str = ""
    materialized: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LineageEdge:
    source: str
    target: str

    @property
    def id(self) -> str:
        return f"{self.source}->{self.target}"


@dataclass
class LineageGraph:
    nodes: dict[str, LineageNode] = field(default_factory=dict)
    edges: dict[str, LineageEdge] = field(default_factory=dict)
    project: str = ""
    generated_at: str | None = None

    def add_node(self, node: LineageNode) -> None:
        self.nodes.setdefault(node.id, node)

    def add_edge(self, source: str, target: str) -> None:
        if source in self.nodes and target in self.nodes and source != target:
            edge = LineageEdge(source, target)
            self.edges.setdefault(edge.id, edge)

    def to_json(self) -> dict[str, Any]:
        """The shape the portal's page renders (cytoscape elements are built from it in the browser)."""
        return {
            "project": self.project,
            "generated_at": self.generated_at,
            "nodes": [asdict(n) for n in self.nodes.values()],
            "edges": [{"id": e.id, "source": e.source, "target": e.target} for e in self.edges.values()],
        }

    def nodes_of_kind(self, *kinds: str) -> list[LineageNode]:
        return [n for n in self.nodes.values() if n.kind in kinds]


def _topic_id(topic: str) -> str:
    return f"topic:{topic}"


def _meta(node: dict[str, Any]) -> dict[str, Any]:
    """dbt ≥1.8 keeps meta in ``config.meta`` too; either may be set depending on where it is declared."""
    meta: dict[str, Any] = {}
    config = node.get("config") or {}
    meta.update(config.get("meta") or {})
    meta.update(node.get("meta") or {})
    return meta


def _relation(node: dict[str, Any]) -> str | None:
    schema = node.get("schema")
    name = node.get("identifier") if node.get("resource_type") == "source" else node.get("alias")
    name = name or node.get("name")
    return f"{schema}.{name}" if schema and name else None


def build_graph(manifest: dict[str, Any], topics: Mapping[str, str] | None = None) -> LineageGraph:
    """Turn a dbt manifest into the platform's end-to-end lineage graph.

    Tests, macros, analyses and unit tests are left out: they are checks, not data movement. A node
    is kept only if it belongs to this project (packages would add noise). ``topics`` maps a topic
    name written in the source meta to the one the stack uses (the settings may rename every topic).
    """
    metadata = manifest.get("metadata") or {}
    project = str(metadata.get("project_name") or "")
    graph = LineageGraph(project=project, generated_at=metadata.get("generated_at"))

    for uid, src in (manifest.get("sources") or {}).items():
        if project and src.get("package_name") not in (None, project):
            continue
        meta = _meta(src)
        graph.add_node(LineageNode(
            id=uid, label=str(src.get("name")), kind="source", layer="bronze", unique_id=uid,
            relation=_relation(src), docs_anchor=f"#!/source/{uid}", description=str(src.get("description") or ""),
            meta={k: v for k, v in meta.items() if isinstance(v, str | int | float | bool)},
        ))
        _add_stream_path(graph, uid, _bind_topics(meta, topics or {}))

    for uid, node in (manifest.get("nodes") or {}).items():
        kind = node.get("resource_type")
        if kind not in DBT_RESOURCES or (project and node.get("package_name") not in (None, project)):
            continue
        graph.add_node(LineageNode(
            id=uid, label=str(node.get("name")), kind=str(kind), layer=layer_of(node), unique_id=uid,
            relation=_relation(node), docs_anchor=f"#!/{kind}/{uid}",
            description=str(node.get("description") or ""),
            materialized=(node.get("config") or {}).get("materialized"),
        ))

    for uid, exposure in (manifest.get("exposures") or {}).items():
        if project and exposure.get("package_name") not in (None, project):
            continue
        graph.add_node(LineageNode(
            id=uid, label=str(exposure.get("label") or exposure.get("name")), kind="exposure", layer="consumer",
            unique_id=uid, docs_anchor=f"#!/exposure/{uid}", description=str(exposure.get("description") or ""),
            meta={"type": str(exposure.get("type") or ""), "url": str(exposure.get("url") or "")},
        ))

    # dbt's own dependencies: source → model → model → exposure.
    for collection in ("nodes", "exposures"):
        for uid, node in (manifest.get(collection) or {}).items():
            if uid not in graph.nodes:
                continue
            for parent in (node.get("depends_on") or {}).get("nodes") or []:
                graph.add_edge(parent, uid)
    return graph


def _bind_topics(meta: dict[str, Any], topics: Mapping[str, str]) -> dict[str, Any]:
    keys = (META_TOPIC, *META_OUTPUT_TOPICS)
    return {k: topics.get(v, v) if k in keys and isinstance(v, str) else v for k, v in meta.items()}


def _add_stream_path(graph: LineageGraph, source_id: str, meta: dict[str, Any]) -> None:
    """producer → topic → Flink job → bronze source, and Flink job → output topics, from source meta."""
    topic = meta.get(META_TOPIC)
    job = meta.get(META_FLINK_JOB)
    producer = meta.get(META_PRODUCER)
    if topic:
        graph.add_node(LineageNode(id=_topic_id(str(topic)), label=str(topic), kind="topic", layer="stream"))
    if job:
        graph.add_node(LineageNode(id=f"flink:{job}", label=str(job), kind="flink_job", layer="stream"))
        graph.add_edge(f"flink:{job}", source_id)
        if topic:
            graph.add_edge(_topic_id(str(topic)), f"flink:{job}")
        for key in META_OUTPUT_TOPICS:
            out = meta.get(key)
            if out:
                graph.add_node(LineageNode(id=_topic_id(str(out)), label=str(out), kind="topic", layer="stream"))
                graph.add_edge(f"flink:{job}", _topic_id(str(out)))
    elif topic:
        graph.add_edge(_topic_id(str(topic)), source_id)
    if producer:
        graph.add_node(LineageNode(id=f"producer:{producer}", label=str(producer), kind="producer", layer="stream"))
        graph.add_edge(f"producer:{producer}", _topic_id(str(topic)) if topic else source_id)


# ---- Cosmos task ids → dbt node names ------------------------------------------------------------
# Cosmos names a task after the dbt node: `<name>_<resource>_build` (TestBehavior.BUILD),
# `<name>_run` / `<name>_test` / `<name>_seed` / `<name>_snapshot`, or `<name>.run` inside a
# per-model task group - all prefixed with the DbtTaskGroup id (`dbt_staging.`).
_BUILD_RE = re.compile(r"^(?P<name>.+?)_(?:model|seed|snapshot)_build$")
_SUFFIX_RE = re.compile(r"^(?P<name>.+?)_(?:run|test|build|seed|snapshot)$")
_GROUP_STEPS = {"run", "test", "build", "seed", "snapshot"}


def dbt_name_from_task_id(task_id: str) -> str | None:
    """The dbt node name a Cosmos task runs, or None for a non-dbt task (``preflight``, ``summary``)."""
    parts = task_id.split(".")
    if len(parts) >= 2 and parts[-1] in _GROUP_STEPS:
        return parts[-2]
    last = parts[-1]
    match = _BUILD_RE.match(last) or _SUFFIX_RE.match(last)
    return match.group("name") if match else None


def task_step(task_id: str) -> str:
    """What the task does to the model: build (run + tests), run or test."""
    last = task_id.split(".")[-1]
    for step in ("build", "test", "run", "seed", "snapshot"):
        if last == step or last.endswith(f"_{step}"):
            return step
    return "run"
