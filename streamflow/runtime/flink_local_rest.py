"""A small client of the local cluster's Flink REST API (loopback only): jobs, their documents for the
health collection (:mod:`streamflow.runtime.health`), cancel. Which job states are active or terminal
is :mod:`streamflow.flink_health`'s vocabulary.

Several jobs share one cluster (ADR 0013): every function here sees only THE spec's jobs, picked by
the job name Flink reports (:func:`~streamflow.runtime.flink_local_config.flink_job_name`), so one
job's state, health or cancel never reads or touches another's."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from streamflow.flink_health import ACTIVE_STATES, CLUSTER_DOWN, NOT_DEPLOYED, TERMINAL_STATES, UNKNOWN
from streamflow.flink_spec import FlinkJobSpec
from streamflow.runtime.flink_local_config import FlinkJobError, flink_job_name, layout, rest_port
from streamflow.settings import Settings


def rest_url(spec: FlinkJobSpec, settings: Settings) -> str:
    return f"http://{settings.host}:{rest_port(spec, settings)}"


def _get_json(url: str, timeout_s: float = 3.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - loopback http only
        return json.loads(response.read())


def cluster_jobs_overview(spec: FlinkJobSpec, settings: Settings) -> list[dict[str, Any]]:
    """``/jobs/overview`` of the spec's cluster: every job on it; [] if the cluster does not answer."""
    try:
        data = _get_json(f"{rest_url(spec, settings)}/jobs/overview")
    except (OSError, urllib.error.URLError, ValueError):
        return []
    return list(data.get("jobs", []))


def own_jobs(spec: FlinkJobSpec, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spec's jobs among a cluster's (by the name Flink reports)."""
    name = flink_job_name(spec)
    return [job for job in jobs if job.get("name") == name]


def jobs_overview(spec: FlinkJobSpec, settings: Settings) -> list[dict[str, Any]]:
    """The spec's jobs from ``/jobs/overview`` (current and earlier ones); [] if the cluster does not answer."""
    return own_jobs(spec, cluster_jobs_overview(spec, settings))


def cluster_ready(spec: FlinkJobSpec, settings: Settings, slots: int | None = None) -> bool:
    """A TaskManager registered with at least ``slots`` slots (default: the spec's parallelism)."""
    data = _get_json(f"{rest_url(spec, settings)}/overview")
    wanted = slots if slots is not None else spec.parallelism
    return int(data.get("taskmanagers", 0)) >= 1 and int(data.get("slots-total", 0)) >= wanted


class RestUnavailable(FlinkJobError):
    """The JobManager process is alive but its REST API did not answer (starting, overloaded, hung)."""


def cluster_alive(spec: FlinkJobSpec, settings: Settings) -> bool:
    """Whether the JobManager process of this job's cluster (from its pid file) is alive."""
    return layout(spec, settings).jobmanager_pid.alive_pid() is not None


def current_job_id(spec: FlinkJobSpec, settings: Settings) -> str | None:
    """The spec's job on its cluster now (active first, then the recorded one), or None."""
    jobs = jobs_overview(spec, settings)
    current = _current_job(spec, settings, jobs) if jobs else None
    return str(current["jid"]) if current else None


def job_rest_documents(spec: FlinkJobSpec, settings: Settings, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """The raw REST documents :mod:`streamflow.runtime.health` reads for the current job, or None if the
    cluster runs no job. ``detail`` must answer (else :class:`RestUnavailable`); the others are
    best-effort (None when missing) so the health rules can say *what* is unknown. Other jobs on the
    same cluster are not this spec's: a cluster that runs only them returns None."""
    base = rest_url(spec, settings)
    try:
        overview = _get_json(f"{base}/jobs/overview", timeout_s)
    except (OSError, urllib.error.URLError, ValueError) as error:
        raise RestUnavailable(f"GET {base}/jobs/overview: {error}") from None
    jobs = own_jobs(spec, list(overview.get("jobs", [])))
    current = _current_job(spec, settings, jobs) if jobs else None
    if current is None:
        return None
    jid = str(current["jid"])
    try:
        detail = _get_json(f"{base}/jobs/{jid}", timeout_s)
    except (OSError, urllib.error.URLError, ValueError) as error:
        raise RestUnavailable(f"GET {base}/jobs/{jid}: {error}") from None
    documents: dict[str, Any] = {"detail": detail}
    for key, path in (("checkpoints", "checkpoints"), ("exceptions", "exceptions?maxExceptions=5"),
                      ("metrics", "metrics?get=numRestarts")):
        try:
            documents[key] = _get_json(f"{base}/jobs/{jid}/{path}", timeout_s)
        except (OSError, urllib.error.URLError, ValueError):
            documents[key] = None
    return documents


def cancel_job(spec: FlinkJobSpec, settings: Settings, job_id: str, timeout_s: float = 60.0) -> str:
    """Cancel a job through REST (``PATCH /jobs/<jid>?mode=cancel``) and wait for a terminal state.

    Retained checkpoints survive a cancel (``RETAIN_ON_CANCELLATION`` in the spec), so the next
    :func:`submit` resumes from the latest one.
    """
    base = rest_url(spec, settings)
    other = [j for j in cluster_jobs_overview(spec, settings)
             if j.get("jid") == job_id and j.get("name") != flink_job_name(spec)]
    if other:  # the cluster runs other specs' jobs too: never cancel one of theirs by mistake
        raise FlinkJobError(f"job {job_id} is {other[0].get('name')!r}, not {spec.name}'s job "
                            f"({flink_job_name(spec)!r}); not cancelled")
    request = urllib.request.Request(f"{base}/jobs/{job_id}?mode=cancel", method="PATCH")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback http only
            response.read()
    except urllib.error.HTTPError as error:
        if error.code != 404:  # 404: the job is gone already
            raise FlinkJobError(f"cancelling {spec.name} ({job_id}) failed: HTTP {error.code} {error.reason}") from None
    deadline = time.monotonic() + timeout_s
    state = UNKNOWN
    while time.monotonic() < deadline:
        state = next((str(j.get("state")) for j in jobs_overview(spec, settings) if j.get("jid") == job_id),
                     "CANCELED")
        if state in TERMINAL_STATES:
            return state
        time.sleep(1.0)
    raise FlinkJobError(f"{spec.name} ({job_id}) still {state} {timeout_s:.0f} s after cancel; "
                        f"see {layout(spec, settings).jobmanager_log}")


def job_state_backend(spec: FlinkJobSpec, settings: Settings, job_id: str) -> str | None:
    """The state backend the running job uses, as Flink reports it (``EmbeddedRocksDBStateBackend``,
    ``HashMapStateBackend``); None when the cluster does not answer."""
    try:
        document = _get_json(f"{rest_url(spec, settings)}/jobs/{job_id}/checkpoints/config")
    except (OSError, ValueError):
        return None
    backend = document.get("state_backend") if isinstance(document, dict) else None
    return str(backend) if backend else None


def stop_with_savepoint(spec: FlinkJobSpec, settings: Settings, job_id: str, target_dir: str,
                        timeout_s: float = 300.0) -> str:
    """Stop the job with a savepoint in Flink's CANONICAL format (``POST /jobs/<jid>/stop``) and return its
    path. A canonical savepoint is the one form of state any backend restores (the operator takes this
    form on a savepoint upgrade); the job ends FINISHED."""
    base = rest_url(spec, settings)
    body = json.dumps({"targetDirectory": target_dir, "formatType": "CANONICAL", "drain": False}).encode()
    request = urllib.request.Request(f"{base}/jobs/{job_id}/stop", data=body, method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback http only
            trigger = json.loads(response.read())["request-id"]
    except urllib.error.HTTPError as error:
        raise FlinkJobError(f"stopping {spec.name} ({job_id}) with a savepoint failed: HTTP {error.code} "
                            f"{error.read().decode(errors='replace')[:300]}") from None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = _get_json(f"{base}/jobs/{job_id}/savepoints/{trigger}", timeout_s=10)
        if status.get("status", {}).get("id") == "COMPLETED":
            operation = status.get("operation") or {}
            if "location" in operation:
                return str(operation["location"])
            raise FlinkJobError(f"the savepoint of {spec.name} ({job_id}) failed: "
                                f"{str(operation.get('failure-cause', operation))[:500]}; the job keeps running")
        time.sleep(1.0)
    raise FlinkJobError(f"the savepoint of {spec.name} ({job_id}) did not complete in {timeout_s:.0f} s; "
                        f"see {layout(spec, settings).jobmanager_log}")


def job_state(spec: FlinkJobSpec, settings: Settings) -> str:
    """State of this spec's current job: RUNNING, FAILED, ... or NOT_DEPLOYED / CLUSTER_DOWN."""
    if layout(spec, settings).jobmanager_pid.alive_pid() is None:
        return CLUSTER_DOWN
    jobs = jobs_overview(spec, settings)
    if not jobs:
        return NOT_DEPLOYED
    current = _current_job(spec, settings, jobs)
    return str(current["state"]) if current else NOT_DEPLOYED


def _current_job(spec: FlinkJobSpec, settings: Settings, jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    active = [j for j in jobs if j.get("state") in ACTIVE_STATES]
    if active:
        return active[0]
    recorded = recorded_job_id(spec, settings)
    for job in jobs:
        if job.get("jid") == recorded:
            return job
    return max(jobs, key=lambda j: int(j.get("start-time", 0))) if jobs else None


def recorded_job_id(spec: FlinkJobSpec, settings: Settings) -> str | None:
    try:
        return str(json.loads(layout(spec, settings).job_file.read_text())["job_id"])
    except (OSError, ValueError, KeyError):
        return None
