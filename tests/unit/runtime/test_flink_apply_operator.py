"""Apply semantics of FlinkDeploymentApplyOperator: create, or patch on AlreadyExists (fake API boundary)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from streamflow.operators.flink_kubernetes import FlinkDeploymentApplyOperator

RESOURCE: dict[str, Any] = {
    "apiVersion": "flink.apache.org/v1beta1",
    "kind": "FlinkDeployment",
    "metadata": {"name": "fraud-detector", "namespace": "streamflow-processing", "labels": {"app": "x"}},
    "spec": {"job": {"parallelism": 1}},
}


class FakeCustomObjects:
    """Records calls; answers like the API server (409 when the object exists)."""

    def __init__(self, exists: bool, status: dict[str, Any] | None = None) -> None:
        self.exists = exists
        self.status = status or {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def get_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("get", args))
        return {**RESOURCE, "spec": {**RESOURCE["spec"], "restartNonce": 2}, "status": self.status}

    def create_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("create", args))
        if self.exists:
            raise ApiException(status=409, reason="AlreadyExists")
        return dict(args[-1])

    def patch_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("patch", args))
        return {"patched": args[-1]}

    def list_cluster_custom_object(self, *args: Any) -> None:  # the provider's cluster-wide list
        raise AssertionError("must not list FlinkDeployments cluster-wide")


class FakeHook:
    def __init__(self, api: FakeCustomObjects) -> None:
        self.custom_object_client = api


def _operator(api: FakeCustomObjects) -> FlinkDeploymentApplyOperator:
    op = FlinkDeploymentApplyOperator(task_id="deploy", application_file=json.dumps(RESOURCE),
                                      namespace="streamflow-processing")
    op.__dict__["hook"] = FakeHook(api)  # cached_property slot: the only faked boundary
    return op


def test_creates_when_missing() -> None:
    api = FakeCustomObjects(exists=False)
    result = _operator(api).execute(context={})
    assert [c[0] for c in api.calls] == ["create"]
    assert result["metadata"]["name"] == "fraud-detector"


def test_patches_spec_when_it_exists() -> None:
    api = FakeCustomObjects(exists=True)
    result = _operator(api).execute(context={})
    assert [c[0] for c in api.calls] == ["create", "get", "patch"]
    group, version, namespace, plural, name, body = api.calls[2][1]
    assert (group, version, plural) == ("flink.apache.org", "v1beta1", "flinkdeployments")
    assert (namespace, name) == ("streamflow-processing", "fraud-detector")
    assert body["spec"] == RESOURCE["spec"]
    assert body["metadata"] == {"labels": {"app": "x"}}
    assert result["patched"] == body


def test_other_api_errors_propagate() -> None:
    class Forbidden(FakeCustomObjects):
        def create_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
            raise ApiException(status=403, reason="Forbidden")

    with pytest.raises(ApiException):
        _operator(Forbidden(exists=False)).execute(context={})


def test_a_failing_job_gets_its_restart_nonce_bumped() -> None:
    """Re-running bootstrap_pipeline on a job in a restart loop makes the operator redeploy it (ADR 0010)."""
    health = {"timeStamp": 1796238100000, "numRestarts": 4, "numRestartsEvaluationTimeStamp": 1796238000000,
              "numCompletedCheckpoints": 0, "numCompletedCheckpointsIncreasedTimeStamp": 1796238000000,
              "healthy": True}
    status = {"lifecycleState": "DEPLOYED", "jobManagerDeploymentStatus": "READY",
              "jobStatus": {"state": "RESTARTING", "jobId": "a" * 32, "startTime": "1796238000000"},
              "clusterInfo": {"ClusterHealthInfo": json.dumps(health)}}
    api = FakeCustomObjects(exists=True, status=status)
    _operator(api).execute(context={})
    body = api.calls[-1][1][-1]
    assert body["spec"]["restartNonce"] == 3
    assert body["spec"]["job"] == RESOURCE["spec"]["job"]


@pytest.mark.parametrize("status", [
    {"lifecycleState": "STABLE", "jobStatus": {"state": "RUNNING", "jobId": "a" * 32}},
    # restarting once, or with no operator health record: left to Flink's own recovery
    {"lifecycleState": "DEPLOYED", "jobStatus": {"state": "RESTARTING", "jobId": "a" * 32}},
])
def test_a_job_that_is_not_looping_keeps_its_restart_nonce(status: dict[str, Any]) -> None:
    api = FakeCustomObjects(exists=True, status=status)
    _operator(api).execute(context={})
    assert "restartNonce" not in api.calls[-1][1][-1]["spec"]
