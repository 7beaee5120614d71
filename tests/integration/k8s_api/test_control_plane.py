"""The harness itself: the pinned kube-apiserver answers, and the operators' CRDs are served.

If these fail, every other test in this folder is about the harness, not the platform.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.k8s_testenv import ControlPlane

pytestmark = pytest.mark.integration

# What the platform's manifests use; a CRD upgrade that drops one of these breaks the overlay.
SERVED = {
    "flinkdeployments.flink.apache.org": "v1beta1",
    "kafkas.kafka.strimzi.io": "v1beta2",
    "kafkanodepools.kafka.strimzi.io": "v1beta2",
    "kafkatopics.kafka.strimzi.io": "v1beta2",
    "clusters.postgresql.cnpg.io": "v1",
}


def test_apiserver_runs_the_pinned_kubernetes_version(kube_api: ControlPlane, api_client: client.ApiClient) -> None:
    version = client.VersionApi(api_client).get_code()
    # The cache folder is keyed by the versions it was built from (kube-vX.Y.Z-etcd-vA.B.C).
    pinned = kube_api.bin_dir.name.split("-")[1]
    assert version.git_version == pinned
    assert kube_api.url.startswith("https://127.0.0.1:")


@pytest.mark.parametrize(("crd", "version"), sorted(SERVED.items()))
def test_operator_crd_is_established_and_serves_the_manifest_version(
    api_client: client.ApiClient, crd: str, version: str
) -> None:
    stored = client.ApiextensionsV1Api(api_client).read_custom_resource_definition(crd)
    conditions = {c.type: c.status for c in stored.status.conditions or []}
    assert conditions.get("Established") == "True", conditions
    served = {v.name for v in stored.spec.versions if v.served}
    assert version in served, f"{crd} serves {sorted(served)}, the manifests use {version}"
    status_subresource = next(v for v in stored.spec.versions if v.name == version).subresources
    # The operators report through /status; the sensor test relies on it being a subresource.
    assert status_subresource is not None and status_subresource.status is not None
