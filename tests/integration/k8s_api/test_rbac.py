"""Airflow's RBAC from the rendered overlay, enforced by a real authorizer.

The test creates the overlay's ServiceAccounts, Roles, RoleBindings (and cluster-scoped RBAC, if
any) for real, obtains a token for Airflow's service account with the TokenRequest API, and then
asks the API server as that identity: Airflow must be able to run its tasks (FlinkDeployments and
the generator pod) in the processing namespace and nowhere else. The FlinkDeployment operator is
also executed with that identity, so a missing verb shows up as the 403 a DAG run would get.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from streamflow.catalog import flink_jobs
from streamflow.operators.flink_kubernetes import FlinkDeploymentApplyOperator
from tests.k8s_testenv import ControlPlane, write_kubeconfig

pytestmark = pytest.mark.integration

PROCESSING = "streamflow-processing"
OTHER = "streamflow-rbac-elsewhere"
RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
# What the DAG's kubernetes tasks do: the apply operator + sensor, and KubernetesPodOperator
# (create, watch/read, read logs, label on completion, delete).
# (Labelling a failed pod ``already_checked`` also needs pods/patch, but the provider tolerates a
# 403 there, so it is not listed as required.)
NEEDED = [
    ("flink.apache.org", "flinkdeployments", "", verb) for verb in ("create", "get", "patch")
] + [("", "pods", "", verb) for verb in ("create", "get", "list", "watch", "patch", "delete")] + [
    ("", "pods", "log", "get"), ("", "events", "", "list"),
]


def _grants(role: dict[str, Any], group: str, resource: str, verb: str) -> bool:
    for rule in role.get("rules") or []:
        if (group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", [])) and (
            resource in rule.get("resources", []) or "*" in rule.get("resources", [])
        ) and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", [])):
            return True
    return False


def _airflow_service_account(docs: list[dict[str, Any]]) -> tuple[str, str]:
    """The service account bound, in the processing namespace, to a Role that creates FlinkDeployments."""
    roles = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs
             if d.get("kind") in ("Role", "ClusterRole")}
    for binding in docs:
        if binding.get("kind") != "RoleBinding" or binding["metadata"].get("namespace") != PROCESSING:
            continue
        ref = binding["roleRef"]
        role = roles.get((ref["kind"], PROCESSING if ref["kind"] == "Role" else "", ref["name"]))
        if role and _grants(role, "flink.apache.org", "flinkdeployments", "create"):
            for subject in binding.get("subjects") or []:
                if subject.get("kind") == "ServiceAccount":
                    return str(subject.get("namespace") or PROCESSING), str(subject["name"])
    raise AssertionError(f"no RoleBinding in {PROCESSING} gives a service account a Role that creates "
                         "FlinkDeployments: Airflow could not deploy the Flink jobs")


@pytest.fixture(scope="module")
def airflow_kubeconfig(kube_api: ControlPlane, api_client: client.ApiClient,
                       rendered_overlay: list[dict[str, Any]], ensure_ns: Callable[[str], str],
                       tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """Airflow's service-account identity: (username, kubeconfig with a TokenRequest token)."""
    rbac = [d for d in rendered_overlay if d.get("kind") in RBAC_KINDS]
    for namespace in {d["metadata"]["namespace"] for d in rbac if d["metadata"].get("namespace")}:
        ensure_ns(namespace)
    ensure_ns(OTHER)
    kube_api.kubectl("apply", "--server-side", "--field-manager=streamflow-ci", "-f", "-",
                     input_text=yaml.safe_dump_all(rbac, sort_keys=False))
    sa_namespace, sa_name = _airflow_service_account(rendered_overlay)
    core = client.CoreV1Api(api_client)
    if not any(d["kind"] == "ServiceAccount" and d["metadata"]["name"] == sa_name for d in rbac):
        # Airflow's Helm chart creates its service accounts; the overlay only binds them.
        ensure_ns(sa_namespace)
        try:
            core.create_namespaced_service_account(sa_namespace, client.V1ServiceAccount(
                metadata=client.V1ObjectMeta(name=sa_name)))
        except ApiException as error:
            assert error.status == 409
    token = core.create_namespaced_service_account_token(
        sa_name, sa_namespace, client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)))
    path = write_kubeconfig(tmp_path_factory.mktemp("airflow-sa") / "kubeconfig", kube_api.url,
                            kube_api.pki.ca_cert if kube_api.pki else Path(), user=sa_name, token=token.status.token,
                            namespace=PROCESSING)
    return f"system:serviceaccount:{sa_namespace}:{sa_name}", path


def _allowed(api: client.ApiClient, namespace: str, group: str, resource: str, sub: str, verb: str) -> bool:
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=client.V1ResourceAttributes(
            namespace=namespace, group=group, resource=resource, subresource=sub or None, verb=verb))))
    return bool(review.status.allowed)


def test_airflow_can_run_its_tasks_in_processing_and_nowhere_else(
    airflow_kubeconfig: tuple[str, Path]
) -> None:
    username, kubeconfig = airflow_kubeconfig
    api = config.new_client_from_config(config_file=str(kubeconfig))
    whoami = client.AuthenticationV1Api(api).create_self_subject_review(client.V1SelfSubjectReview())
    assert whoami.status.user_info.username == username  # the token really is Airflow's identity
    missing = [n for n in NEEDED if not _allowed(api, PROCESSING, *n)]
    assert not missing, f"{username} lacks in {PROCESSING}: {missing}"
    leaked = [(ns, n) for ns in (OTHER, "default") for n in NEEDED if _allowed(api, ns, *n)]
    assert not leaked, f"{username} may also act outside {PROCESSING}: {leaked}"


def test_flink_apply_operator_runs_with_airflows_identity(
    airflow_kubeconfig: tuple[str, Path], api_client: client.ApiClient
) -> None:
    _, kubeconfig = airflow_kubeconfig
    resource = yaml.safe_load(flink_jobs()[-1].spec_path.read_text())
    resource["metadata"]["name"] = "rbac-probe"

    def apply(namespace: str) -> dict[str, Any]:
        return FlinkDeploymentApplyOperator(
            task_id="rbac_probe", application_file=json.dumps(resource), namespace=namespace,
            in_cluster=False, config_file=str(kubeconfig)).execute(context={})

    assert apply(PROCESSING)["metadata"]["namespace"] == PROCESSING
    assert apply(PROCESSING)["metadata"]["generation"] == 1  # the re-run path (patch) is allowed too
    with pytest.raises(ApiException) as forbidden:
        apply(OTHER)
    assert forbidden.value.status == 403
    client.CustomObjectsApi(api_client).delete_namespaced_custom_object(
        "flink.apache.org", "v1beta1", PROCESSING, "flinkdeployments", "rbac-probe")
