"""Live status of every lineage node, assembled from independent probes and cached briefly.

The probes (warehouse, Kafka, Flink, Airflow task instances) run in parallel with a time limit, so a
service that is down shows as ``unknown`` with the reason instead of hanging the page. Results are
cached for ``CACHE_TTL_S``: several people watching the page cost one round of probes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from streamflow import portal_status
from streamflow.lineage import LineageGraph
from streamflow.settings import Settings

CACHE_TTL_S = 10.0
PROBE_TIMEOUT_S = 20.0

OK, WARN, FAIL, RUNNING, UNKNOWN = "ok", "warn", "fail", "running", "unknown"
TASK_HEALTH = {
    "success": OK, "failed": FAIL, "upstream_failed": FAIL, "up_for_retry": WARN, "skipped": WARN,
    "running": RUNNING, "queued": RUNNING, "scheduled": RUNNING, "deferred": RUNNING, "restarting": RUNNING,
}
FLINK_OK = {"RUNNING"}
FLINK_STARTING = {"CREATED", "INITIALIZING", "RECONCILING", "RESTARTING", "DEPLOYED", "STABLE"}
FLINK_FAILED = {"FAILED", "FAILING", "CANCELED", "CANCELLING", "FINISHED", "SUSPENDED", "CLUSTER_DOWN"}


def flink_health(state: str) -> str:
    if state in FLINK_OK:
        return OK
    if state in FLINK_FAILED:
        return FAIL
    if state in FLINK_STARTING:
        return RUNNING
    return WARN if state != portal_status.UNKNOWN else UNKNOWN


def node_statuses(graph: LineageGraph, facts: dict[str, Any], dlq_topic: str) -> dict[str, dict[str, Any]]:
    """Per node id: ``health`` (ok/warn/fail/running/unknown), a one-line ``summary`` and the details."""
    tables: dict[str, dict[str, Any]] = facts.get("tables") or {}
    topics: dict[str, int | None] = facts.get("topics") or {}
    flink: dict[str, str] = facts.get("flink") or {}
    tasks: dict[str, dict[str, Any]] = facts.get("tasks") or {}
    out: dict[str, dict[str, Any]] = {}
    for node in graph.nodes.values():
        status: dict[str, Any] = {"health": UNKNOWN, "summary": ""}
        if node.kind == "topic":
            count = topics.get(node.label)
            status["messages"] = count
            if count is not None:
                is_dlq = node.label == dlq_topic
                status["health"] = WARN if is_dlq and count > 0 else OK
                status["summary"] = f"{count:,} msgs" + (" in DLQ" if is_dlq else "")
        elif node.kind == "flink_job":
            state = flink.get(node.label, portal_status.UNKNOWN)
            status.update(flink_state=state, health=flink_health(state), summary=state)
        elif node.kind == "producer":
            status["health"] = OK if any(topics.get(t.label) for t in graph.nodes.values()
                                         if t.kind == "topic" and f"{node.id}->{t.id}" in graph.edges) else UNKNOWN
        if node.relation and node.relation in tables:
            table = tables[node.relation]
            status.update(rows=table["rows"], freshest=table["freshest"], age_s=table["age_s"],
                          freshness_column=table["freshness_column"])
            status["summary"] = f"{table['rows']:,} rows"
            if node.kind == "source":
                status["health"] = OK if table["rows"] else WARN
        task = tasks.get(node.label) if node.kind in ("model", "seed", "snapshot") else None
        if task:
            status["last_run"] = task
            status["health"] = TASK_HEALTH.get(task["state"], UNKNOWN)
            status["summary"] = " · ".join(p for p in (task["state"], status["summary"]) if p)
        out[node.id] = status
    return out


class StatusCache:
    """One probe round per TTL, shared by every request (the api-server runs a single process here)."""

    def __init__(self, ttl_s: float = CACHE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._key: Any = None
        self._at = 0.0

    def get(self, key: Any, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            if self._value is not None and self._key == key and time.monotonic() - self._at < self.ttl_s:
                return self._value
            value = compute()
            self._value, self._key, self._at = value, key, time.monotonic()
            return value


def collect(graph: LineageGraph, settings: Settings,
            task_results: Callable[[], dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Run every probe and build the status document the page merges into the graph."""
    relations = [n.relation for n in graph.nodes.values() if n.relation]
    topics = sorted({n.label for n in graph.nodes_of_kind("topic")} | {settings.topic_dlq})
    jobs = [n.label for n in graph.nodes_of_kind("flink_job")]
    probes: dict[str, Callable[[], Any]] = {
        "tables": lambda: portal_status.table_stats(settings, relations),
        "topics": lambda: portal_status.topic_messages(settings, topics),
        "flink": lambda: {job: portal_status.flink_job_state(settings, job) for job in jobs},
        "tasks": task_results,
    }
    facts, errors = portal_status.gather(probes, timeout_s=PROBE_TIMEOUT_S)
    dlq_messages = (facts.get("topics") or {}).get(settings.topic_dlq)
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "runtime": settings.runtime.value,
        "nodes": node_statuses(graph, facts, settings.topic_dlq),
        "dlq": {"topic": settings.topic_dlq, "messages": dlq_messages},
        "errors": errors,
    }
