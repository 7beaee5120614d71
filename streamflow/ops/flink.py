"""`streamflow flink jobs|restart|cancel <job>`: the jobs' health and the two actions people take.

Health is :func:`streamflow.runtime.health.job_health` (state, restarts, last checkpoint, a reason
with the fix): the same answer the DAG's sensors and the portal use. Restart and cancel act on the
local runtime (one Flink cluster for the pipeline's jobs, :mod:`streamflow.runtime.flink_local`); on Kubernetes the
Flink operator owns the job, so the CLI prints the ``kubectl`` command instead of half-doing it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from streamflow.flink_health import ACTIVE_STATES, JobHealth
from streamflow.flink_spec import FlinkJobSpec, SpecError, load_all
from streamflow.ops.render import ago
from streamflow.runtime.health import job_health
from streamflow.settings import Runtime, Settings


class FlinkOpError(RuntimeError):
    """An action could not be taken; the message says what to do instead."""


@dataclass(frozen=True)
class JobRow:
    job: str
    state: str
    restarts: int | None
    last_checkpoint: str
    running_since: str
    healthy: bool
    reason: str
    source: str


def pipeline_jobs() -> list[FlinkJobSpec]:
    """The jobs (one per FlinkDeployment under k8s/base/flink), in deploy order."""
    from streamflow.runtime.flink_local_config import job_index

    specs = list(load_all().values())
    names = [s.name for s in specs]
    return sorted(specs, key=lambda s: job_index(s, names))


def job(name: str) -> FlinkJobSpec:
    """A job by either spelling: ``fraud_detector`` (task ids, logs) or ``fraud-detector`` (the resource)."""
    specs = pipeline_jobs()
    for spec in specs:
        if name in (spec.name, spec.job_key):
            return spec
    raise SpecError(f"no Flink job {name!r}; the jobs are {', '.join(s.job_key for s in specs)}")


def health_rows(settings: Settings) -> list[tuple[FlinkJobSpec, JobHealth]]:
    """Every job with its health (never raises: unknown is a state)."""
    return [(spec, job_health(spec.job_key, settings)) for spec in pipeline_jobs()]


def row(health: JobHealth, now: float | None = None) -> JobRow:
    now = time.time() if now is None else now
    return JobRow(
        job=health.job,
        state=health.state,
        restarts=health.restarts,
        last_checkpoint=ago(now - health.last_checkpoint_at) if health.last_checkpoint_at else "-",
        running_since=ago(now - health.running_since) if health.running_since else "-",
        healthy=health.healthy,
        reason=health.reason,
        source=health.source,
    )


def _kubernetes_hint(target: FlinkJobSpec, action: str, settings: Settings) -> str:
    ns, name = target.namespace or settings.k8s_namespace_processing, target.name
    if action == "restart":
        return (f"on Kubernetes the Flink operator restarts the job: kubectl -n {ns} patch flinkdeployment {name} "
                f"--type merge -p '{{\"spec\":{{\"restartNonce\":{int(time.time())}}}}}'")
    return (f"on Kubernetes suspend the job through its FlinkDeployment: kubectl -n {ns} patch flinkdeployment "
            f"{name} --type merge -p '{{\"spec\":{{\"job\":{{\"state\":\"suspended\"}}}}}}'")


def cancel(settings: Settings, name: str) -> str:
    """Cancel the job's running instance; its retained checkpoints stay for the next deploy."""
    from streamflow.runtime.flink_local_rest import cancel_job, current_job_id, job_state

    target = job(name)
    if settings.runtime is Runtime.KUBERNETES:
        raise FlinkOpError(_kubernetes_hint(target, "cancel", settings))
    job_id = current_job_id(target, settings)
    state = job_state(target, settings)
    if job_id is None or state not in ACTIVE_STATES:
        raise FlinkOpError(f"{target.job_key} is not running (state {state}); nothing to cancel")
    final = cancel_job(target, settings, job_id)
    return (f"{target.job_key}: job {job_id} {final}; checkpoints kept "
            f"(`bin/streamflow flink restart {target.job_key}` resumes from the latest)")


def restart(settings: Settings, name: str) -> str:
    """Cancel the running instance (if any) and deploy again from the latest retained checkpoint.

    Starts the job's cluster too when it is down, so this is also the fix for a killed JobManager.
    """
    from streamflow.runtime.flink_local_lifecycle import deploy, latest_checkpoint
    from streamflow.runtime.flink_local_rest import cancel_job, current_job_id, job_state

    target = job(name)
    if settings.runtime is Runtime.KUBERNETES:
        raise FlinkOpError(_kubernetes_hint(target, "restart", settings))
    if job_state(target, settings) in ACTIVE_STATES:
        job_id = current_job_id(target, settings)
        if job_id is not None:
            cancel_job(target, settings, job_id)
    checkpoint = latest_checkpoint(target, settings)
    handle = deploy(target, settings)
    resumed = f"resumed from {checkpoint.name}" if checkpoint else "no checkpoint: started from committed offsets"
    return f"{target.job_key}: job {handle.job_id} {handle.state} ({resumed}); REST {handle.rest_url}"
