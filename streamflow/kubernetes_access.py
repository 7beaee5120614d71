"""How StreamFlow reaches Kubernetes: the FlinkDeployment resource's coordinates and the hook.

One home for what was written in three places (the FlinkDeployment operators, the health
collection, the preflight check): the custom resource's group, version and plural, which
settings say how to connect (``STREAMFLOW_K8S_IN_CLUSTER``, ``STREAMFLOW_K8S_CONFIG_FILE``), and the
construction of Airflow's ``KubernetesHook``, as the Airflow providers do it: operators and sensors
build requests through the hook, and every caller gets the same client (timeouts, config loading).

The provider is imported when a hook is built, not with this module: the local runtime and the CLI
import the constants without paying for Airflow's Kubernetes provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    from streamflow.settings import Settings

#: The Flink Kubernetes Operator's custom resource (``FlinkDeployment``, API ``flink.apache.org/v1beta1``).
FLINK_GROUP = "flink.apache.org"
FLINK_VERSION = "v1beta1"
FLINK_PLURAL = "flinkdeployments"
#: The Airflow connection the DAG's Kubernetes tasks use (the providers' default).
DEFAULT_CONN_ID = "kubernetes_default"


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    """The hook and operator arguments that the settings decide: in-cluster config or a kubeconfig file."""
    return {"in_cluster": settings.k8s_in_cluster, "config_file": settings.k8s_config_file or None}


def build_hook(conn_id: str | None, in_cluster: bool | None = None, config_file: str | None = None) -> KubernetesHook:
    """A ``KubernetesHook``; with ``conn_id`` None it reads no Airflow connection, only the arguments
    (the CLI and the portal have no task context to look a connection up in)."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=conn_id, kubernetes_conn_id=None, in_cluster=in_cluster, config_file=config_file)


def kubernetes_hook(settings: Settings, conn_id: str | None = None) -> KubernetesHook:
    """The hook configured by the settings, plus the Airflow connection ``conn_id`` if one is named."""
    return build_hook(conn_id, **connection_kwargs(settings))
