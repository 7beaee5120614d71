"""The FlinkDeployment sensor's decision on every status combination the operator reports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamflow.operators.flink_status import Verdict, decide


def _resource(lifecycle: str | None, job: str | None, jm: str | None, error: Any = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if lifecycle:
        status["lifecycleState"] = lifecycle
    if job:
        status["jobStatus"] = {"state": job, "jobName": "fraud-detector"}
    if jm:
        status["jobManagerDeploymentStatus"] = jm
    if error is not None:
        status["error"] = error
    return {"metadata": {"name": "fraud-detector"}, "status": status}


@pytest.mark.parametrize(
    ("lifecycle", "job", "jm", "expected"),
    [
        # Just created: the operator has not reconciled yet (no status at all, or MISSING) -> wait.
        (None, None, None, Verdict.WAIT),
        ("CREATED", None, "MISSING", Verdict.WAIT),
        ("CREATED", "RECONCILING", "DEPLOYING", Verdict.WAIT),
        # The provider's sensor would say "success" here: JM READY but the job is not running yet.
        ("DEPLOYED", "CREATED", "READY", Verdict.WAIT),
        ("DEPLOYED", "INITIALIZING", "READY", Verdict.WAIT),
        ("UPGRADING", "RUNNING", "DEPLOYING", Verdict.WAIT),
        ("DEPLOYED", "RESTARTING", "READY", Verdict.WAIT),
        # Really running.
        ("DEPLOYED", "RUNNING", "READY", Verdict.RUNNING),
        ("STABLE", "RUNNING", "READY", Verdict.RUNNING),
        # Failures, fail fast.
        ("FAILED", "FAILED", "ERROR", Verdict.FAILED),
        ("STABLE", "FAILED", "READY", Verdict.FAILED),
        ("DEPLOYED", "CANCELED", "READY", Verdict.FAILED),
        ("ROLLED_BACK", "RUNNING", "READY", Verdict.FAILED),
        ("CREATED", None, "ERROR", Verdict.FAILED),
        ("SUSPENDED", "FINISHED", "READY", Verdict.FAILED),
    ],
)
def test_decision_table(lifecycle: str | None, job: str | None, jm: str | None, expected: Verdict) -> None:
    assert decide(_resource(lifecycle, job, jm)).verdict is expected


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
