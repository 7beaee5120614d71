"""The FlinkDeployment sensor's decision on every status combination the operator reports.

Statuses are written the way the Flink Kubernetes Operator 1.10 writes them (its ``JobStatus``,
``CommonStatus`` and ``ClusterHealthInfo`` classes, vendored source): job times are epoch-millisecond
strings, the health record is a JSON string under ``status.clusterInfo.ClusterHealthInfo``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamflow.flink_health import needs_redeploy
from streamflow.operators.flink_kubernetes import restart_nonce_for
from streamflow.operators.flink_status import Verdict, decide, health_from_deployment

NOW = 1_796_238_000.0
WINDOW = 120.0


def _health_info(restarts: int = 0, checkpoints: int = 3, increased_s_ago: float = 5, healthy: bool = True) -> str:
    at = int((NOW - increased_s_ago) * 1000)
    return json.dumps({"timeStamp": int(NOW * 1000) - 1000, "numRestarts": restarts,
                       "numRestartsEvaluationTimeStamp": at, "numCompletedCheckpoints": checkpoints,
                       "numCompletedCheckpointsIncreasedTimeStamp": at, "healthy": healthy})


def _resource(lifecycle: str | None, job: str | None, jm: str | None, error: Any = None, *,
              started_s_ago: float = 600, info: str | None = None, generation: int | None = None,
              observed: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if lifecycle:
        status["lifecycleState"] = lifecycle
    if job:
        status["jobStatus"] = {"state": job, "jobName": "fraud-detector", "jobId": "a" * 32,
                               "startTime": str(int((NOW - started_s_ago) * 1000)),
                               "updateTime": str(int((NOW - started_s_ago) * 1000))}
    if jm:
        status["jobManagerDeploymentStatus"] = jm
    if error is not None:
        status["error"] = error
    if info is not None:
        status["clusterInfo"] = {"flink-version": "1.20.1", "ClusterHealthInfo": info}
    if observed is not None:
        status["observedGeneration"] = observed
    metadata: dict[str, Any] = {"name": "fraud-detector", "namespace": "streamflow-processing"}
    if generation is not None:
        metadata["generation"] = generation
    return {"metadata": metadata, "spec": {"job": {"upgradeMode": "savepoint"}}, "status": status}


HEALTHY = _health_info()


@pytest.mark.parametrize(
    ("lifecycle", "job", "jm", "info", "expected"),
    [
        # Just created: the operator has not reconciled yet (no status at all, or MISSING) -> wait.
        (None, None, None, None, Verdict.WAIT),
        ("CREATED", None, "MISSING", None, Verdict.WAIT),
        ("CREATED", "RECONCILING", "DEPLOYING", None, Verdict.WAIT),
        # The provider's sensor would say "success" here: JM READY but the job is not running yet.
        ("DEPLOYED", "CREATED", "READY", None, Verdict.WAIT),
        ("DEPLOYED", "INITIALIZING", "READY", None, Verdict.WAIT),
        ("UPGRADING", "RUNNING", "DEPLOYING", HEALTHY, Verdict.WAIT),
        ("DEPLOYED", "RESTARTING", "READY", HEALTHY, Verdict.WAIT),
        # RUNNING is not enough (ADR 0010): without the operator's health record nothing proves data flows.
        ("DEPLOYED", "RUNNING", "READY", None, Verdict.WAIT),
        ("STABLE", "RUNNING", "READY", None, Verdict.WAIT),
        ("STABLE", "RUNNING", "READY", _health_info(checkpoints=0), Verdict.WAIT),
        ("STABLE", "RUNNING", "READY", _health_info(healthy=False), Verdict.WAIT),
        ("STABLE", "RUNNING", "READY", _health_info(increased_s_ago=900), Verdict.WAIT),  # before the (re)start
        # Really running: stable, and a checkpoint completed since it started.
        ("DEPLOYED", "RUNNING", "READY", HEALTHY, Verdict.RUNNING),
        ("STABLE", "RUNNING", "READY", HEALTHY, Verdict.RUNNING),
        # Failures, fail fast.
        ("FAILED", "FAILED", "ERROR", None, Verdict.FAILED),
        ("STABLE", "FAILED", "READY", HEALTHY, Verdict.FAILED),
        ("DEPLOYED", "CANCELED", "READY", None, Verdict.FAILED),
        ("ROLLED_BACK", "RUNNING", "READY", HEALTHY, Verdict.FAILED),
        ("CREATED", None, "ERROR", None, Verdict.FAILED),
        ("SUSPENDED", "FINISHED", "READY", None, Verdict.FAILED),
        # A restart loop: the operator's record counts restarts; 2+ since deploy fail the task.
        ("DEPLOYED", "RESTARTING", "READY", _health_info(restarts=4), Verdict.FAILED),
        ("STABLE", "RUNNING", "READY", _health_info(restarts=4, healthy=False), Verdict.FAILED),
    ],
)
def test_decision_table(lifecycle: str | None, job: str | None, jm: str | None, info: str | None,
                        expected: Verdict) -> None:
    assert decide(_resource(lifecycle, job, jm, info=info), now=NOW, stable_window_s=WINDOW).verdict is expected


def test_a_job_that_just_entered_running_waits_for_the_window() -> None:
    fresh = _resource("STABLE", "RUNNING", "READY", started_s_ago=30, info=_health_info(increased_s_ago=5))
    health = health_from_deployment("fraud_detector", fresh, NOW, WINDOW)
    assert not health.healthy and "30 s ago" in health.reason
    assert health_from_deployment("fraud_detector", fresh, NOW + 100, WINDOW).healthy


def test_a_spec_the_operator_has_not_reconciled_yet_is_not_healthy() -> None:
    """Right after a patch (e.g. the restartNonce bump) the status still describes the old job."""
    stale = _resource("STABLE", "RUNNING", "READY", info=HEALTHY, generation=3, observed=2)
    assert decide(stale, now=NOW, stable_window_s=WINDOW).verdict is Verdict.WAIT
    current = _resource("STABLE", "RUNNING", "READY", info=HEALTHY, generation=3, observed=3)
    assert decide(current, now=NOW, stable_window_s=WINDOW).verdict is Verdict.RUNNING


def test_restarts_before_the_deploy_are_the_baseline() -> None:
    looping = _resource("DEPLOYED", "RESTARTING", "READY", info=_health_info(restarts=4))
    assert decide(looping, now=NOW, stable_window_s=WINDOW, restarts_at_deploy=3).verdict is Verdict.WAIT
    assert decide(looping, now=NOW, stable_window_s=WINDOW, restarts_at_deploy=2).verdict is Verdict.FAILED


def test_missing_health_record_says_how_to_enable_it() -> None:
    health = health_from_deployment("fraud_detector", _resource("STABLE", "RUNNING", "READY"), NOW, WINDOW)
    assert not health.healthy and health.restarts is None and health.last_checkpoint_at is None
    assert "kubernetes.operator.cluster.health-check.enabled" in health.reason


@pytest.mark.parametrize(("resource", "bump"), [
    (_resource("DEPLOYED", "RESTARTING", "READY", info=_health_info(restarts=4)), True),
    (_resource("FAILED", "FAILED", "ERROR"), True),
    # flapping: back in RUNNING 30 s ago (the operator's updateTime) after 3 restarts
    (_resource("STABLE", "RUNNING", "READY", info=_health_info(restarts=3), started_s_ago=30), True),
    (_resource("STABLE", "RUNNING", "READY", info=HEALTHY), False),
    (_resource("STABLE", "RUNNING", "READY"), False),  # unknown restarts: no evidence to act on
    (_resource(None, None, None), False),
])
def test_the_deploy_task_bumps_restart_nonce_only_for_a_failing_job(resource: dict[str, Any], bump: bool) -> None:
    resource["spec"]["restartNonce"] = 4
    nonce = restart_nonce_for(resource, now=NOW)
    assert nonce == (5 if bump else None)
    assert needs_redeploy(health_from_deployment("fraud_detector", resource, NOW, WINDOW)) is bump


def test_failure_carries_the_operators_error_message() -> None:
    error = json.dumps({"type": "org.apache.flink.kubernetes.operator.exception.ReconciliationException",
                        "message": "java.lang.ClassNotFoundException: org.apache.flink.client.python.PythonDriver"})
    decision = decide(_resource("FAILED", "FAILED", "ERROR", error))
    assert decision.verdict is Verdict.FAILED
    assert "ClassNotFoundException" in decision.reason
    assert "lifecycleState=FAILED" in decision.reason


def test_plain_text_error_is_kept() -> None:
    decision = decide(_resource("CREATED", None, "ERROR", "image pull back-off"))
    assert decision.verdict is Verdict.FAILED
    assert "image pull back-off" in decision.reason


def test_waiting_reports_a_stale_error_without_failing() -> None:
    decision = decide(_resource("UPGRADING", "RECONCILING", "DEPLOYING", "previous savepoint timed out"))
    assert decision.verdict is Verdict.WAIT
    assert "previous savepoint timed out" in decision.reason
