"""Live status of every lineage node, assembled from independent probes and cached briefly.

The probes (warehouse, Kafka offsets, the DLQ's committed records, the rows a bronze sink refused,
Flink job health, consumer lag, Airflow task instances) run in parallel with a time limit, so a
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
from streamflow.flink_health import CLUSTER_DOWN, RECOVERING_STATES, STARTING_STATES, TERMINAL_STATES
from streamflow.flink_health import UNKNOWN as FLINK_UNKNOWN_STATE
from streamflow.lineage import LineageGraph
from streamflow.settings import Settings

CACHE_TTL_S = 10.0
PROBE_TIMEOUT_S = 20.0

OK, WARN, FAIL, RUNNING, UNKNOWN = "ok", "warn", "fail", "running", "unknown"
TASK_HEALTH = {
    "success": OK, "failed": FAIL, "upstream_failed": FAIL, "up_for_retry": WARN, "skipped": WARN,
    "running": RUNNING, "queued": RUNNING, "scheduled": RUNNING, "deferred": RUNNING, "restarting": RUNNING,
}
#: Flink states, as :mod:`streamflow.flink_health` reports them, that mean "data is not flowing".
FLINK_FAILING = RECOVERING_STATES | TERMINAL_STATES | {CLUSTER_DOWN}
#: Flink states of a job on its way up (DEPLOYED/DEPLOYING: the Flink operator's words on Kubernetes).
FLINK_STARTING = STARTING_STATES | {"RUNNING", "DEPLOYED", "DEPLOYING"}
FLINK_UNKNOWN = {FLINK_UNKNOWN_STATE, "unknown", ""}
#: A job RUNNING this many stable windows without becoming healthy is stuck, not starting.
STUCK_WINDOWS = 3


def flink_health(health: dict[str, Any] | None) -> str:
    """Colour of a Flink job node from a ``JobHealth`` (as a dict); only ``healthy`` is ok.

    A restart loop passes through RUNNING between two failures, so the state alone never makes a
    node green: RESTARTING/FAILING/terminal states are ``fail``, and so is a RUNNING job that has
    restarted and is not healthy again yet. Missing evidence is ``unknown``, never ``ok``.
    """
    if not health:
        return UNKNOWN
    if health.get("healthy") is True:
        return OK
    state = str(health.get("state") or "")
    if state in FLINK_UNKNOWN:
        return UNKNOWN
    if state in FLINK_FAILING or health.get("final") is True:
        return FAIL
    restarts = health.get("restarts")
    if isinstance(restarts, int) and restarts > 0:
        return FAIL  # restarted and not stable again: a restart loop looks exactly like this
    if state in FLINK_STARTING:
        since, checked = health.get("running_since"), health.get("checked_at")
        window = float(health.get("stable_window_s") or 0)
        if since and checked and window and checked - since > STUCK_WINDOWS * window:
            return FAIL  # RUNNING for many windows without a checkpoint: a sink that cannot write
        return RUNNING  # (re)deployed, not yet through its stable window and first checkpoint
    return WARN  # NOT_DEPLOYED and anything else Flink may add


def _flink_summary(health: dict[str, Any] | None, lag: dict[str, Any] | None) -> str:
    parts = [str(health.get("state")) if health else "unknown"]
    restarts = health.get("restarts") if health else None
    if isinstance(restarts, int) and restarts > 0:
        parts.append(f"{restarts} restart{'s' if restarts != 1 else ''}")
    if lag and lag.get("lag") is not None:
        parts.append(f"lag {lag['lag']:,}")
    return " · ".join(parts)


def _dlq_status(dlq: dict[str, Any] | None) -> dict[str, Any]:
    """DLQ topic node: committed records (what a consumer can read), never offsets."""
    if not dlq:
        return {"health": UNKNOWN, "summary": "", "messages": None}
    records, complete = int(dlq["records"]), bool(dlq["complete"])
    text = f"{records:,}" if complete else f"≥ {records:,}"
    return {
        "health": WARN if records > 0 else (OK if complete else UNKNOWN),
        "summary": f"{text} msgs in DLQ",
        "messages": records if complete else None, "messages_at_least": records, "count_complete": complete,
        "offsets": dlq.get("offsets"),
    }



def _sink_rejects_status(rejects: dict[str, Any] | None) -> dict[str, Any]:
    """bronze.sink_rejects: rows a sink refused. Any row is red (``fail``): it passed validation and is
    missing from bronze, so someone has to re-insert or drop it; no reading is ``unknown``, never ok."""
    if not rejects:
        return {"health": UNKNOWN, "summary": "", "rejects": None}
    rows = int(rejects["rows"])
    return {"health": FAIL if rows > 0 else OK, "summary": f"{rows:,} rejected row{'s' if rows != 1 else ''}",
            "rejects": rows, "rows": rows, "rejects_by_table": rejects.get("by_table") or {},
            "rejects_sqlstates": rejects.get("sqlstates") or [], "freshest": rejects.get("newest"),
            "age_s": rejects.get("age_s"), "freshness_column": "last_rejected_at" if rejects.get("newest") else None}

def node_statuses(graph: LineageGraph, facts: dict[str, Any], dlq_topic: str) -> dict[str, dict[str, Any]]:
    """Per node id: ``health`` (ok/warn/fail/running/unknown), a one-line ``summary`` and the details."""
    tables: dict[str, dict[str, Any]] = facts.get("tables") or {}
    offsets: dict[str, int | None] = facts.get("topics") or {}
    flink: dict[str, dict[str, Any] | None] = facts.get("flink") or {}
    lags: dict[str, dict[str, Any] | None] = facts.get("lag") or {}
    tasks: dict[str, dict[str, Any]] = facts.get("tasks") or {}
    out: dict[str, dict[str, Any]] = {}
    for node in graph.nodes.values():
        status: dict[str, Any] = {"health": UNKNOWN, "summary": ""}
        if node.kind == "topic" and node.label == dlq_topic:
            status.update(_dlq_status(facts.get("dlq")))
        elif node.kind == "topic":
            count = offsets.get(node.label)
            status["offsets"] = count
            if count is not None:
                status["health"] = OK
                status["summary"] = f"{count:,} offsets"
        elif node.kind == "flink_job":
            health, lag = flink.get(node.label), lags.get(node.label)
            status.update(health=flink_health(health), summary=_flink_summary(health, lag),
                          flink_state=(health or {}).get("state") or UNKNOWN, job=health, lag=lag)
        elif node.kind == "producer":
            status["health"] = OK if any(offsets.get(t.label) for t in graph.nodes.values()
                                         if t.kind == "topic" and f"{node.id}->{t.id}" in graph.edges) else UNKNOWN
        if node.relation == portal_status.SINK_REJECTS_RELATION:
            # Empty is the healthy state here (the generic source rule below would call it "warn").
            status.update(_sink_rejects_status(facts.get("sink_rejects")))
        elif node.relation and node.relation in tables:
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
    relations = [n.relation for n in graph.nodes.values()
                 if n.relation and n.relation != portal_status.SINK_REJECTS_RELATION]  # its own probe
    topics = sorted({n.label for n in graph.nodes_of_kind("topic")} - {settings.topic_dlq})
    jobs = [n.label for n in graph.nodes_of_kind("flink_job")]
    probes: dict[str, Callable[[], Any]] = {
        "tables": lambda: portal_status.table_stats(settings, relations),
        "topics": lambda: portal_status.topic_offsets(settings, topics),
        "dlq": lambda: portal_status.dlq_records(settings),
        "sink_rejects": lambda: portal_status.sink_rejects(settings),
        "flink": lambda: portal_status.flink_health(settings, jobs),
        "lag": lambda: portal_status.consumer_lags(settings, jobs),
        "tasks": task_results,
    }
    facts, errors = portal_status.gather(probes, timeout_s=PROBE_TIMEOUT_S)
    nodes = node_statuses(graph, facts, settings.topic_dlq)
    dlq = _dlq_status(facts.get("dlq"))
    rejects = _sink_rejects_status(facts.get("sink_rejects"))
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "runtime": settings.runtime.value,
        "nodes": nodes,
        "dlq": {"topic": settings.topic_dlq, "messages": dlq["messages"],
                "at_least": dlq.get("messages_at_least"), "complete": dlq.get("count_complete", False),
                "offsets": dlq.get("offsets"), "counted": "committed records (read_committed consumer)"},
        # None = unknown (probe failed, or the table is missing): the page never shows that as 0.
        "sink_rejects": {"relation": portal_status.SINK_REJECTS_RELATION, "rows": rejects["rejects"],
                         "health": rejects["health"], "by_table": rejects.get("rejects_by_table", {}),
                         "sqlstates": rejects.get("rejects_sqlstates", []), "newest": rejects.get("freshest")},
        "jobs": {job: {"health": nodes[f"flink:{job}"]["health"], "summary": nodes[f"flink:{job}"]["summary"]}
                 for job in jobs if f"flink:{job}" in nodes},
        "errors": errors,
    }
