"""streamflow.kubernetes_access: one home for the FlinkDeployment's coordinates and the hook's settings."""

from __future__ import annotations

import re
from pathlib import Path

from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

from streamflow.kubernetes_access import (
    DEFAULT_CONN_ID,
    FLINK_GROUP,
    FLINK_PLURAL,
    FLINK_VERSION,
    build_hook,
    connection_kwargs,
    kubernetes_hook,
)
from streamflow.settings import load_settings

PACKAGE = Path(__file__).resolve().parents[3] / "streamflow"


def test_the_coordinates_are_the_operators_crd() -> None:
    assert (FLINK_GROUP, FLINK_VERSION, FLINK_PLURAL) == ("flink.apache.org", "v1beta1", "flinkdeployments")


def test_the_hook_follows_the_settings(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, k8s_in_cluster=False, k8s_config_file="/etc/kube/config")
    hook = kubernetes_hook(settings)
    assert isinstance(hook, KubernetesHook)
    assert (hook.in_cluster, hook.config_file) == (False, "/etc/kube/config")
    assert hook.conn_id is None  # no Airflow connection is looked up outside a task


def test_an_empty_config_file_setting_means_none(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, k8s_in_cluster=True, k8s_config_file="")
    assert connection_kwargs(settings) == {"in_cluster": True, "config_file": None}
    assert kubernetes_hook(settings, DEFAULT_CONN_ID).conn_id == "kubernetes_default"


def test_build_hook_keeps_a_named_connection() -> None:
    hook = build_hook("my_cluster", in_cluster=None, config_file="/k")
    assert (hook.conn_id, hook.in_cluster, hook.config_file) == ("my_cluster", None, "/k")


def test_the_package_builds_hooks_and_names_the_crd_only_here() -> None:
    """A second ``KubernetesHook(`` or CRD literal in streamflow/ would be a second home that can drift."""
    pattern = re.compile(r'KubernetesHook\(|"flinkdeployments"|"v1beta1"')
    found = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if pattern.search(path.read_text()))
    assert found == ["kubernetes_access.py"]


def test_the_running_sensor_builds_its_hook_here() -> None:
    from streamflow.operators.flink_kubernetes import FlinkDeploymentRunningSensor

    sensor = FlinkDeploymentRunningSensor(task_id="wait", name="fraud-detector", namespace="ns", in_cluster=False,
                                          config_file="/k")
    hook = sensor.hook
    assert isinstance(hook, KubernetesHook)
    assert (hook.conn_id, hook.in_cluster, hook.config_file) == ("kubernetes_default", False, "/k")
