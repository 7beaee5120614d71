"""Collect a Flink job's health in the configured runtime; :mod:`streamflow.flink_health` judges it.

Why apart from the rules: collecting needs each runtime's client (the local cluster's REST API,
the FlinkDeployment read through the API server), while the rules are imported by those very
runtimes and operators (the local deploy's wait, the Kubernetes sensor). Kept in one module, the two
closed an import cycle; here the collection sits beside the runtimes and imports the rules, never
the reverse.

Every reading is a :class:`~streamflow.flink_health.JobHealth`; nothing here raises for a service
that does not answer: that is reported as CLUSTER_DOWN / NOT_DEPLOYED / UNKNOWN with the error.
"""

from __future__ import annotations

import time
from typing import Any

from streamflow.flink_health import (
    CLUSTER_DOWN,
    NOT_DEPLOYED,
    UNKNOWN,
    JobHealth,
    assess,
    default_stable_window_s,
    snapshot_from_rest,
)
from streamflow.flink_spec import FlinkJobSpec, spec_for
from streamflow.kubernetes_access import FLINK_GROUP, FLINK_PLURAL, FLINK_VERSION, kubernetes_hook
from streamflow.operators.flink_status import health_from_deployment
from streamflow.runtime.flink_local_rest import RestUnavailable, cluster_alive, job_rest_documents, rest_url
from streamflow.settings import Runtime, Settings


def job_health(job: str, settings: Settings, stable_window_s: float | None = None) -> JobHealth:
    """Health of one DAG job (``transaction_processor``) in the configured runtime; never raises for
    an unreachable service: that is reported as CLUSTER_DOWN / UNKNOWN with the error."""
    spec = spec_for(job)
    window = stable_window_s if stable_window_s is not None else default_stable_window_s(spec, settings)
    if settings.runtime is Runtime.KUBERNETES:
        return kubernetes_health(job, spec, settings, window)
    return local_health(job, spec, settings, window)


def local_health(job: str, spec: FlinkJobSpec, settings: Settings, stable_window_s: float) -> JobHealth:
    """Read the job's own local cluster through its REST API and assess what it says."""
    url = rest_url(spec, settings)
    unknown: dict[str, Any] = {"job": job, "restarts": None, "last_exception": None, "last_checkpoint_at": None,
                               "running_since": None, "healthy": False, "stable_window_s": stable_window_s,
                               "source": url}
    if not cluster_alive(spec, settings):
        return JobHealth(**unknown, state=CLUSTER_DOWN, final=True, reason=(
            f"{job}: its local Flink cluster is not running; re-run bootstrap_pipeline (deploy_{job}) or "
            "`streamflow up`"))
    try:
        raw = job_rest_documents(spec, settings)
    except RestUnavailable as error:
        return JobHealth(**unknown, state=UNKNOWN, reason=f"{job}: Flink REST at {url} did not answer ({error})")
    if raw is None:
        return JobHealth(**unknown, state=NOT_DEPLOYED, reason=(
            f"{job}: the cluster at {url} runs no job; re-run bootstrap_pipeline (deploy_{job})"))
    snapshot = snapshot_from_rest(raw["detail"], raw.get("checkpoints"), raw.get("exceptions"), raw.get("metrics"))
    return assess(job, snapshot, time.time(), stable_window_s, source=url)


def kubernetes_health(job: str, spec: FlinkJobSpec, settings: Settings, stable_window_s: float) -> JobHealth:
    """Read the FlinkDeployment through the API server and interpret its status."""
    where = f"FlinkDeployment {spec.namespace}/{spec.name}"
    try:
        resource = kubernetes_hook(settings).custom_object_client.get_namespaced_custom_object(
            FLINK_GROUP, FLINK_VERSION, spec.namespace or settings.k8s_namespace_processing, FLINK_PLURAL, spec.name)
    except Exception as error:  # any API failure: unknown, with the error, never ok
        status = getattr(error, "status", None)
        if status == 404:
            return JobHealth(job, NOT_DEPLOYED, None, None, None, None, False,
                             f"{where} does not exist; run bootstrap_pipeline (deploy_{job})",
                             stable_window_s=stable_window_s, source=where)
        return JobHealth(job, UNKNOWN, None, None, None, None, False,
                         f"{where}: Kubernetes API not readable ({type(error).__name__}: {str(error)[:200]})",
                         stable_window_s=stable_window_s, source=where)
    return health_from_deployment(job, resource, time.time(), stable_window_s)
