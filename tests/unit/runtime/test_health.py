"""streamflow.runtime.health on Kubernetes: the FlinkDeployment is read through the hook the settings
configure, and an API that cannot be read gives an unknown health, never an ok one.

Only the API server is replaced (a fake ``custom_object_client``); the status interpretation is the
real one (:mod:`streamflow.operators.flink_status`). The local path, against a fake Flink REST API, is
in test_flink_health.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from streamflow.flink_health import NOT_DEPLOYED, UNKNOWN
from streamflow.runtime import health
from streamflow.settings import Settings, load_settings

JOB = "transaction_processor"


class FakeCustomObjects:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.asked: list[tuple[Any, ...]] = []

    def get_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        self.asked.append(args)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class FakeHook:
    def __init__(self, api: FakeCustomObjects) -> None:
        self.custom_object_client = api


@pytest.fixture()
def kubernetes(tmp_path: Path) -> Settings:
    return load_settings(state_dir=tmp_path, runtime="kubernetes", kafka_bootstrap_servers="kafka.invalid:9092",
                         postgres_password="x", k8s_in_cluster=False,
                         k8s_config_file=str(tmp_path / "kubeconfig"))


def _fake_api(monkeypatch: pytest.MonkeyPatch,
              answer: dict[str, Any] | Exception) -> tuple[FakeCustomObjects, list[Any]]:
    api = FakeCustomObjects(answer)
    hooked: list[Any] = []

    def kubernetes_hook(settings: Settings, conn_id: str | None = None) -> FakeHook:
        hooked.append((settings, conn_id))
        return FakeHook(api)

    monkeypatch.setattr(health, "kubernetes_hook", kubernetes_hook)
    return api, hooked


def _running(started_s_ago: float, checkpoint_s_ago: float) -> dict[str, Any]:
    now_ms = time.time() * 1000
    checkpoint_ms = int(now_ms - checkpoint_s_ago * 1000)
    info = {"timeStamp": int(now_ms), "numRestarts": 0, "numRestartsEvaluationTimeStamp": int(now_ms),
            "numCompletedCheckpoints": 4, "numCompletedCheckpointsIncreasedTimeStamp": checkpoint_ms, "healthy": True}
    return {
        "metadata": {"name": "transaction-processor", "namespace": "streamflow-processing"},
        "status": {"lifecycleState": "STABLE", "jobManagerDeploymentStatus": "READY",
                   "jobStatus": {"state": "RUNNING", "jobId": "b" * 32,
                                 "startTime": str(int(now_ms - started_s_ago * 1000)),
                                 "updateTime": str(int(now_ms - started_s_ago * 1000))},
                   "clusterInfo": {"ClusterHealthInfo": json.dumps(info)}},
    }


def test_reads_the_flinkdeployment_through_the_settings_hook(monkeypatch, kubernetes):
    api, hooked = _fake_api(monkeypatch, _running(started_s_ago=600, checkpoint_s_ago=5))
    reading = health.job_health(JOB, kubernetes)
    assert reading.healthy and reading.reason == "ok" and reading.job_id == "b" * 32
    assert api.asked == [("flink.apache.org", "v1beta1", "streamflow-processing", "flinkdeployments",
                          "transaction-processor")]
    assert hooked == [(kubernetes, None)]  # the settings' hook, no Airflow connection (CLI, portal)
    assert reading.stable_window_s == 120.0  # two of the spec's checkpoint intervals (60s)


def test_a_young_deployment_is_not_healthy_yet(monkeypatch, kubernetes):
    _fake_api(monkeypatch, _running(started_s_ago=30, checkpoint_s_ago=5))
    reading = health.job_health(JOB, kubernetes)
    assert not reading.healthy and "without a restart" in reading.reason


def test_a_missing_deployment_is_not_deployed(monkeypatch, kubernetes):
    _fake_api(monkeypatch, ApiException(status=404, reason="Not Found"))
    reading = health.job_health(JOB, kubernetes)
    assert reading.state == NOT_DEPLOYED and not reading.healthy
    assert "deploy_transaction_processor" in reading.reason


@pytest.mark.parametrize("error", [ApiException(status=403, reason="Forbidden"), ConnectionError("refused")])
def test_an_unreadable_api_is_unknown_with_the_error(monkeypatch, kubernetes, error):
    _fake_api(monkeypatch, error)
    reading = health.job_health(JOB, kubernetes, stable_window_s=7)
    assert reading.state == UNKNOWN and not reading.healthy and reading.restarts is None
    assert type(error).__name__ in reading.reason and reading.stable_window_s == 7


def test_the_local_runtime_never_asks_kubernetes(monkeypatch, tmp_path):
    _, hooked = _fake_api(monkeypatch, AssertionError("asked Kubernetes"))
    reading = health.job_health(JOB, load_settings(state_dir=tmp_path, postgres_password="x"))
    assert reading.state == "CLUSTER_DOWN" and hooked == []  # no JobManager pid file under tmp_path
