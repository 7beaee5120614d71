"""Is a Flink job healthy, i.e. does data flow through it? One answer for both runtimes.

Why this module exists (ADR 0010): "RUNNING" is a moment, not a health. A job in a restart loop
passes through RUNNING between two failures, so a sensor that polls the state every few seconds
eventually sees RUNNING and goes green while nothing reaches bronze. Every consumer that shows a
Flink job as "ok" (the DAG's ``wait_<job>_running`` sensors, the portal, ``streamflow doctor``)
therefore asks :func:`streamflow.runtime.health.job_health`, which says healthy only with evidence:

* the job is RUNNING (and, locally, all its tasks are RUNNING);
* it has not restarted within the *stable window* (default: two checkpoint intervals), i.e. it
  (re)entered RUNNING at least that long ago;
* a checkpoint completed *after* it (re)entered RUNNING: sources, operators and sinks all made it
  through one barrier, which is the cheapest end-to-end proof that the sinks accept writes.

Anything that cannot be observed is reported as unknown (``state`` UNKNOWN, ``restarts`` None,
``healthy`` False), never as ok.

Local runtime: the shared cluster's REST API for the job's own jid (``/jobs/<jid>``, ``/checkpoints``, ``/exceptions``,
the ``numRestarts`` metric). Kubernetes runtime: the FlinkDeployment's status written by the Flink
operator (``jobStatus``, ``lifecycleState``, ``error`` and the operator's cluster health record in
``status.clusterInfo``), see :mod:`streamflow.operators.flink_status`; Airflow may not reach the
JobManager's REST port there (network policy), the operator can.

This module is the rules only: the vocabulary of Flink's job states (the one place that says
which states are active, starting, recovering or terminal), :func:`assess`, :func:`sensor_decision`,
:func:`needs_redeploy` and the parsing of REST answers. They take plain data and a clock, so they are
unit-tested without a cluster, and the runtimes and operators import them freely. Collecting the
evidence needs the runtimes' clients, so it lives beside them: :mod:`streamflow.runtime.health`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from streamflow.settings import Runtime, Settings

if TYPE_CHECKING:
    from streamflow.flink_spec import FlinkJobSpec

# ---- Flink's job states: the one vocabulary (runtimes, operators, CLI and portal import it) ---------
#: Pseudo-states next to Flink's own job states.
NOT_DEPLOYED = "NOT_DEPLOYED"  # the cluster answers but has no job for this spec
CLUSTER_DOWN = "CLUSTER_DOWN"  # no JobManager process / deployment
UNKNOWN = "UNKNOWN"  # something answered, but not enough to tell

#: Job states after which waiting cannot make the job healthy (a streaming job never FINISHES on purpose).
TERMINAL_STATES = frozenset({"FAILED", "CANCELED", "FINISHED", "SUSPENDED"})
#: States a job passes through while it recovers from a failure.
RECOVERING_STATES = frozenset({"RESTARTING", "FAILING", "CANCELLING"})
#: States of a job that is being set up (submitted, restored, reconciled after a JobManager failover).
STARTING_STATES = frozenset({"CREATED", "INITIALIZING", "RECONCILING"})
#: States of the job that holds a cluster: deploy keeps it rather than submitting another, cancel targets it.
ACTIVE_STATES = STARTING_STATES | {"RUNNING", "RESTARTING"}

#: A restart loop: this many restarts since the deploy task ran fails the "running" sensor at once.
DEFAULT_MAX_RESTARTS = 2
#: Stable window = this many checkpoint intervals without a restart.
STABLE_INTERVALS = 2


@dataclass(frozen=True)
class JobHealth:
    """What is known about one job's health, with the evidence, and one sentence for people."""

    job: str  # logical name as in the DAG: "transaction_processor"
    state: str  # Flink job state (RUNNING, RESTARTING, FAILED, ...) or NOT_DEPLOYED / CLUSTER_DOWN / UNKNOWN
    restarts: int | None  # restarts of the current job (None = unknown)
    last_exception: str | None  # root exception of the last failure, first line(s), or None
    last_checkpoint_at: float | None  # epoch seconds of the latest completed checkpoint
    running_since: float | None  # epoch seconds the job (re)entered RUNNING, if known
    healthy: bool  # RUNNING, no restart within the stable window, a checkpoint completed since (re)deploy
    reason: str  # one sentence: "ok" or why not healthy, with what to do
    job_id: str | None = None
    #: True when waiting cannot make the job healthy (terminal state, or its health cannot be observed):
    #: a sensor fails at once instead of poking until its timeout.
    final: bool = False
    stable_window_s: float = 0.0
    source: str = ""  # where the evidence came from (REST URL, FlinkDeployment ns/name)
    checked_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class RestSnapshot:
    """The parts of Flink's REST answers (1.20) the health rules read; built by :func:`snapshot_from_rest`."""

    job_id: str
    state: str
    state_timestamps_ms: dict[str, int]  # /jobs/<jid> "timestamps": last time the job entered each state
    vertex_states: tuple[str, ...]  # /jobs/<jid> vertices[].status
    vertex_start_ms: tuple[int, ...]  # /jobs/<jid> vertices[].start-time (current attempts)
    restarts: int | None  # /jobs/<jid>/metrics?get=numRestarts
    latest_checkpoint_ms: int | None  # /jobs/<jid>/checkpoints latest.completed.latest_ack_timestamp
    exceptions: tuple[tuple[int, str], ...]  # /jobs/<jid>/exceptions exceptionHistory: (timestamp ms, text)


# ---- pure rules ----------------------------------------------------------------------------------
def first_lines(text: str | None, lines: int = 2, limit: int = 400) -> str | None:
    """The first line(s) of a Java stack trace: the exception class and its message."""
    if not text:
        return None
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][:lines]
    joined = " | ".join(kept)
    return joined[:limit]


def root_cause(stacktrace: str | None) -> str | None:
    """The innermost ``Caused by:`` of a Java stack trace (what actually broke), else its first line."""
    if not stacktrace:
        return None
    causes = [line.strip()[len("Caused by:"):].strip() for line in stacktrace.splitlines()
              if line.strip().startswith("Caused by:")]
    if causes:
        return causes[-1][:400]
    return first_lines(stacktrace, 1)


def running_since_ms(snapshot: RestSnapshot) -> int | None:
    """When the job last (re)entered RUNNING with all its tasks.

    With region failover (Flink's default) a task failure restarts the tasks while the *job* stays
    RUNNING, so ``timestamps.RUNNING`` alone does not move on a restart. The latest of: the job's
    RUNNING timestamp, the current task attempts' start, and the latest failure is therefore used.
    """
    candidates = [snapshot.state_timestamps_ms.get("RUNNING") or 0, *snapshot.vertex_start_ms]
    if snapshot.exceptions:
        candidates.append(max(ts for ts, _ in snapshot.exceptions))
    latest = max((c for c in candidates if c and c > 0), default=0)
    return latest or None


def assess(job: str, snapshot: RestSnapshot, now: float, stable_window_s: float, source: str = "") -> JobHealth:
    """Health from what Flink's REST API said (pure: ``now`` is epoch seconds)."""
    since_ms = running_since_ms(snapshot)
    since = since_ms / 1000 if since_ms else None
    checkpoint = snapshot.latest_checkpoint_ms / 1000 if snapshot.latest_checkpoint_ms else None
    last_exception = root_cause(snapshot.exceptions[0][1]) if snapshot.exceptions else None
    common: dict[str, Any] = {
        "job": job, "state": snapshot.state, "restarts": snapshot.restarts, "last_exception": last_exception,
        "last_checkpoint_at": checkpoint, "running_since": since, "job_id": snapshot.job_id,
        "stable_window_s": stable_window_s, "source": source, "checked_at": now,
    }
    failure = f"; last exception: {last_exception}" if last_exception else ""
    restarts = "unknown" if snapshot.restarts is None else str(snapshot.restarts)
    if snapshot.state in TERMINAL_STATES:
        return JobHealth(**common, healthy=False, final=True, reason=(
            f"{job} is {snapshot.state} (restarts: {restarts}){failure}; fix the cause, then re-run "
            "bootstrap_pipeline (its deploy task resubmits the job)"))
    if snapshot.state != "RUNNING":
        return JobHealth(**common, healthy=False, reason=(
            f"{job} is {snapshot.state}, not RUNNING (restarts: {restarts}){failure}"))
    not_running = sorted({s for s in snapshot.vertex_states if s != "RUNNING"})
    if not_running:
        return JobHealth(**common, healthy=False, reason=(
            f"{job} is RUNNING but some tasks are {', '.join(not_running)} (restarts: {restarts}){failure}"))
    if snapshot.restarts is None:
        return JobHealth(**common, healthy=False, reason=(
            f"{job} is RUNNING but its restart count is unknown (numRestarts metric missing): cannot tell "
            "whether it is stable"))
    if since is None:
        return JobHealth(**common, healthy=False, reason=f"{job} is RUNNING but Flink reports no RUNNING time")
    stable_for = now - since
    if stable_for < stable_window_s:
        what = "restarted" if snapshot.restarts else "started"
        return JobHealth(**common, healthy=False, reason=(
            f"{job} {what} {stable_for:.0f} s ago (restarts: {restarts}); healthy after {stable_window_s:.0f} s "
            f"without a restart{failure}"))
    if checkpoint is None or checkpoint < since:
        return JobHealth(**common, healthy=False, reason=(
            f"{job} is RUNNING for {stable_for:.0f} s but no checkpoint completed since it (re)started: "
            "check the job's checkpoints in the Flink UI (a sink that cannot write blocks them)"))
    return JobHealth(**common, healthy=True, reason="ok")


class Verdict(StrEnum):
    RUNNING = "running"  # healthy: the sensor succeeds
    WAIT = "wait"  # not yet: poke again
    FAILED = "failed"  # waiting will not help: fail the task


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str


def sensor_decision(health: JobHealth, restarts_at_deploy: int | None = None,
                    max_restarts: int = DEFAULT_MAX_RESTARTS) -> Decision:
    """What a "job is running" sensor does with a health reading.

    A restart loop fails the task instead of poking until the timeout: ``max_restarts`` restarts
    since the deploy task ran (``restarts_at_deploy``; the deploy task resubmits a failing job, so
    usually 0) is a loop. A single restart followed by a stable window is tolerated.
    """
    if health.healthy:
        return Decision(Verdict.RUNNING, health.reason)
    if health.final:
        return Decision(Verdict.FAILED, health.reason)
    if health.restarts is not None:
        since_deploy = health.restarts - (restarts_at_deploy or 0)
        if restarts_at_deploy is not None and health.restarts < restarts_at_deploy:
            since_deploy = health.restarts  # a new job (resubmitted) counts from zero
        if since_deploy >= max_restarts:
            cause = health.last_exception or "no exception recorded"
            return Decision(Verdict.FAILED, (
                f"{health.job} is in a restart loop: {since_deploy} restarts since it was deployed (state "
                f"{health.state}); last exception: {cause}. Fix the cause (job logs, warehouse/Kafka "
                "reachability), then re-run bootstrap_pipeline"))
    return Decision(Verdict.WAIT, health.reason)


def needs_redeploy(health: JobHealth, max_restarts: int = DEFAULT_MAX_RESTARTS) -> bool:
    """Whether the deploy task should resubmit the job instead of keeping it (ADR 0010).

    Yes when it has stopped (FAILED, CANCELED...) or when it is in a restart loop: not healthy and
    restarted ``max_restarts`` times or more. A single restart is left to Flink's own recovery (a
    lost TaskManager, a broker hiccup), as is a job whose restart count is unknown: no evidence to
    act on.
    """
    if health.healthy:
        return False
    if health.state in TERMINAL_STATES:
        return True
    return health.restarts is not None and health.restarts >= max_restarts


# ---- REST parsing (pure) -------------------------------------------------------------------------
def snapshot_from_rest(detail: dict[str, Any], checkpoints: dict[str, Any] | None,
                       exceptions: dict[str, Any] | None, metrics: list[dict[str, Any]] | None) -> RestSnapshot:
    """Turn the raw JSON of ``/jobs/<jid>``, ``/checkpoints``, ``/exceptions`` and ``/metrics`` into a snapshot."""
    vertices = detail.get("vertices") or []
    latest = ((checkpoints or {}).get("latest") or {}).get("completed") or None
    history = ((exceptions or {}).get("exceptionHistory") or {}).get("entries") or []
    found: list[tuple[int, str]] = []
    for entry in history:
        text = entry.get("stacktrace") or entry.get("exceptionName") or ""
        found.append((int(entry.get("timestamp") or 0), str(text)))
    if not found and (exceptions or {}).get("root-exception"):
        found.append((int((exceptions or {}).get("timestamp") or 0), str((exceptions or {})["root-exception"])))
    found.sort(key=lambda item: item[0], reverse=True)
    restarts: int | None = None
    for metric in metrics or []:
        if metric.get("id") in ("numRestarts", "fullRestarts"):
            try:
                restarts = int(float(metric["value"]))
            except (KeyError, TypeError, ValueError):
                restarts = None
            if metric.get("id") == "numRestarts":
                break
    return RestSnapshot(
        job_id=str(detail.get("jid") or ""),
        state=str(detail.get("state") or UNKNOWN),
        state_timestamps_ms={str(k): int(v) for k, v in (detail.get("timestamps") or {}).items() if v},
        vertex_states=tuple(str(v.get("status") or UNKNOWN) for v in vertices),
        vertex_start_ms=tuple(int(v.get("start-time") or 0) for v in vertices if int(v.get("start-time") or 0) > 0),
        restarts=restarts,
        latest_checkpoint_ms=int(latest["latest_ack_timestamp"]) if latest and latest.get("latest_ack_timestamp")
        else None,
        exceptions=tuple(found),
    )


# ---- the stable window ---------------------------------------------------------------------------
def default_stable_window_s(spec: FlinkJobSpec, settings: Settings) -> float:
    """Two checkpoint intervals of the runtime the job runs in (local: the setting; Kubernetes: the spec)."""
    if settings.runtime is Runtime.LOCAL:
        interval = float(settings.flink_checkpoint_interval_s)
    else:
        interval = parse_duration_s(spec.flink_configuration.get("execution.checkpointing.interval", "60s"))
    return STABLE_INTERVALS * interval


def parse_duration_s(value: str) -> float:
    """Flink durations ('60s', '1 min', '500ms', '2m', '60000') in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not match:
        raise ValueError(f"not a Flink duration: {value!r}")
    number, unit = float(match.group(1)), match.group(2).lower()
    factors = {"": 0.001, "ms": 0.001, "milli": 0.001, "millis": 0.001, "s": 1, "sec": 1, "secs": 1, "second": 1,
               "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60, "h": 3600, "hour": 3600,
               "hours": 3600}
    if unit not in factors:
        raise ValueError(f"unknown duration unit in {value!r}")
    return number * factors[unit]
