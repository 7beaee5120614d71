"""What a FlinkDeployment's status means, as pure functions (unit-tested on recorded statuses).

The provider's ``FlinkKubernetesSensor`` only reads ``status.jobManagerDeploymentStatus``: READY does
not mean the job runs, and MISSING is normal right after creation. The operator's real view is
``status.lifecycleState`` (CREATED, UPGRADING, DEPLOYED, STABLE, ROLLING_BACK, ROLLED_BACK, FAILED,
SUSPENDED, DELETING, DELETED) and ``status.jobStatus.state`` (CREATED, RUNNING, FAILING, FAILED,
CANCELED, FINISHED, RESTARTING, RECONCILING, INITIALIZING...).

Neither says whether data flows: a job in a restart loop is RUNNING half of the time (ADR 0010).
The evidence the operator (1.10) can give comes from its cluster health check
(``kubernetes.operator.cluster.health-check.enabled: "true"`` in the spec's flinkConfiguration): it
reads the job's ``numRestarts`` and ``numberOfCompletedCheckpoints`` metrics through the JobManager
REST API and records them as JSON in ``status.clusterInfo.ClusterHealthInfo``::

    {"timeStamp": ms, "numRestarts": n, "numRestartsEvaluationTimeStamp": ms,
     "numCompletedCheckpoints": n, "numCompletedCheckpointsIncreasedTimeStamp": ms, "healthy": bool}

(``numRestarts`` is the count at the start of the operator's restart window, a lower bound of the
current count.) Airflow may not open the JobManager's REST port itself (network policy), so this
record is the evidence; without it the job is reported as not proven healthy, never as ok.
"""

from __future__ import annotations

import json
import time
from typing import Any

from streamflow.flink_health import (
    NOT_DEPLOYED,
    RECOVERING_STATES,
    TERMINAL_STATES,
    UNKNOWN,
    Decision,
    JobHealth,
    Verdict,
    sensor_decision,
)

__all__ = ["Decision", "Verdict", "cluster_health_info", "decide", "health_from_deployment"]

#: The operator's ``status.lifecycleState`` values (a FlinkDeployment's, not a job's: Flink's job states are
#: in :mod:`streamflow.flink_health`).
HEALTHY_LIFECYCLE = {"STABLE", "DEPLOYED"}
FAILED_LIFECYCLE = {"FAILED", "ROLLED_BACK", "SUSPENDED", "DELETED", "DELETING"}
HEALTH_CHECK_KEY = "kubernetes.operator.cluster.health-check.enabled"
CLUSTER_HEALTH_INFO = "ClusterHealthInfo"


def cluster_health_info(status: dict[str, Any]) -> dict[str, Any] | None:
    """The operator's health record from ``status.clusterInfo`` (None if absent or unreadable)."""
    raw = (status.get("clusterInfo") or {}).get(CLUSTER_HEALTH_INFO)
    if not raw:
        return None
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) and parsed.get("timeStamp") else None


def _ms(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number / 1000 if number > 0 else None


def health_from_deployment(job: str, resource: dict[str, Any], now: float, stable_window_s: float) -> JobHealth:
    """Health of the job a FlinkDeployment runs, from its status alone (pure: ``now`` is epoch seconds)."""
    metadata = resource.get("metadata") or {}
    status = resource.get("status") or {}
    lifecycle = str(status.get("lifecycleState") or "")
    job_status = status.get("jobStatus") or {}
    jm = str(status.get("jobManagerDeploymentStatus") or "")
    error = _error_text(status.get("error")) if status.get("error") else None
    where = (f"lifecycleState={lifecycle or '-'} jobStatus.state={job_status.get('state') or '-'} "
             f"jobManagerDeploymentStatus={jm or '-'}")
    source = f"FlinkDeployment {metadata.get('namespace', '')}/{metadata.get('name', '')}"
    state = str(job_status.get("state") or (NOT_DEPLOYED if jm in ("", "MISSING", "DEPLOYING") else UNKNOWN))
    info = cluster_health_info(status)
    restarts = int(info["numRestarts"]) if info and info.get("numRestarts") is not None else None
    checkpoint_at = (_ms(info.get("numCompletedCheckpointsIncreasedTimeStamp"))
                     if info and int(info.get("numCompletedCheckpoints") or 0) > 0 else None)
    started = _ms(job_status.get("startTime"))
    changed = _ms(job_status.get("updateTime"))
    running_since = max(t for t in (started, changed) if t) if state == "RUNNING" and (started or changed) else None
    common: dict[str, Any] = {
        "job": job, "state": state, "restarts": restarts, "last_exception": error,
        "last_checkpoint_at": checkpoint_at, "running_since": running_since, "job_id": job_status.get("jobId"),
        "stable_window_s": stable_window_s, "source": source, "checked_at": now,
    }
    failure = f"; operator error: {error}" if error else ""

    def unhealthy(reason: str, final: bool = False) -> JobHealth:
        return JobHealth(**common, healthy=False, final=final, reason=f"{reason} ({where})")

    if lifecycle in FAILED_LIFECYCLE or state in TERMINAL_STATES or jm == "ERROR":
        return unhealthy(f"{job} has failed{failure or '; operator error: (none reported)'}", final=True)
    generation, observed = metadata.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and int(observed) < int(generation):
        return unhealthy(f"{job}: the operator has not reconciled spec generation {generation} yet "
                         f"(observed {observed}){failure}")
    if state in RECOVERING_STATES:
        return unhealthy(f"{job} is {state}, recovering from a failure{failure}")
    if lifecycle not in HEALTHY_LIFECYCLE or state != "RUNNING":
        return unhealthy(f"{job} is not running yet{failure}")
    if info is None:
        enabled = str(((resource.get("spec") or {}).get("flinkConfiguration") or {}).get(HEALTH_CHECK_KEY, ""))
        hint = ("the operator has not recorded one yet" if enabled.lower() == "true" else
                f"set {HEALTH_CHECK_KEY}: \"true\" in the spec's flinkConfiguration")
        return unhealthy(f"{job} is RUNNING but its restarts and checkpoints are unknown: no "
                         f"status.clusterInfo.{CLUSTER_HEALTH_INFO} ({hint})")
    if info.get("healthy") is False:
        return unhealthy(f"{job} is RUNNING but the operator's health check says unhealthy (too many restarts "
                         f"or no checkpoint progress; restarts at window start: {restarts}){failure}")
    if running_since is None:
        return unhealthy(f"{job} is RUNNING but the operator reports no start time")
    stable_for = now - running_since
    if stable_for < stable_window_s:
        return unhealthy(f"{job} entered RUNNING {stable_for:.0f} s ago; healthy after {stable_window_s:.0f} s "
                         "without a restart")
    if checkpoint_at is None or checkpoint_at < running_since:
        return unhealthy(f"{job} is RUNNING for {stable_for:.0f} s but no checkpoint completed since it (re)started "
                         "(operator health record): check the job's checkpoints and sinks")
    return JobHealth(**common, healthy=True, reason="ok")


def decide(resource: dict[str, Any], now: float | None = None, stable_window_s: float = 120.0,
           restarts_at_deploy: int | None = None) -> Decision:
    """The sensor's decision for one FlinkDeployment object (as returned by the API)."""
    name = str((resource.get("metadata") or {}).get("name") or "job")
    health = health_from_deployment(name, resource, time.time() if now is None else now, stable_window_s)
    return sensor_decision(health, restarts_at_deploy)


def _error_text(error: Any) -> str:
    if not error:
        return "(none reported)"
    if isinstance(error, str):
        try:
            parsed = json.loads(error)
        except ValueError:
            return error[:500]
        if isinstance(parsed, dict):
            return str(parsed.get("message") or parsed)[:500]
    return str(error)[:500]
