"""What a FlinkDeployment's status means, as a pure function (unit-tested on recorded statuses).

The provider's ``FlinkKubernetesSensor`` only reads ``status.jobManagerDeploymentStatus``: READY does
not mean the job runs, and MISSING is normal right after creation. The operator's real view is
``status.lifecycleState`` (CREATED, UPGRADING, DEPLOYED, STABLE, ROLLING_BACK, ROLLED_BACK, FAILED,
SUSPENDED, DELETING, DELETED) and ``status.jobStatus.state`` (CREATED, RUNNING, FAILING, FAILED,
CANCELED, FINISHED, RESTARTING, RECONCILING, INITIALIZING...).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    RUNNING = "running"
    WAIT = "wait"
    FAILED = "failed"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str


HEALTHY_LIFECYCLE = {"STABLE", "DEPLOYED"}
FAILED_LIFECYCLE = {"FAILED", "ROLLED_BACK", "SUSPENDED", "DELETED", "DELETING"}
FAILED_JOB_STATES = {"FAILED", "CANCELED", "FINISHED"}  # a streaming job that FINISHED has stopped


def decide(resource: dict[str, Any]) -> Decision:
    """Decide from a FlinkDeployment object (as returned by the API) whether the job really runs."""
    status = resource.get("status") or {}
    lifecycle = str(status.get("lifecycleState") or "")
    job = status.get("jobStatus") or {}
    job_state = str(job.get("state") or "")
    jm = str(status.get("jobManagerDeploymentStatus") or "")
    error = status.get("error")
    where = (f"lifecycleState={lifecycle or '-'} jobStatus.state={job_state or '-'} "
             f"jobManagerDeploymentStatus={jm or '-'}")
    if lifecycle in FAILED_LIFECYCLE:
        return Decision(Verdict.FAILED, f"{where}; operator error: {_error_text(error)}")
    if job_state in FAILED_JOB_STATES:
        return Decision(Verdict.FAILED, f"{where}; operator error: {_error_text(error)}")
    if jm == "ERROR":
        return Decision(Verdict.FAILED, f"{where}; operator error: {_error_text(error)}")
    if lifecycle in HEALTHY_LIFECYCLE and job_state == "RUNNING":
        return Decision(Verdict.RUNNING, where)
    # CREATED/UPGRADING/MISSING/DEPLOYING/RECONCILING/RESTARTING or a stale error: keep waiting.
    suffix = f"; last error: {_error_text(error)}" if error else ""
    return Decision(Verdict.WAIT, where + suffix)


def _error_text(error: Any) -> str:
    if not error:
        return "(none reported)"
    if isinstance(error, str):
        import json

        try:
            parsed = json.loads(error)
        except ValueError:
            return error[:500]
        if isinstance(parsed, dict):
            return str(parsed.get("message") or parsed)[:500]
    return str(error)[:500]
