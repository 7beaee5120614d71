"""The generator task of the kubernetes runtime: the pod KubernetesPodOperator builds from
k8s/base/generator/pod-template.yaml is accepted by the API server (Pod validation, the
ServiceAccount admission plugin) and stored with the template's command, env and security context
plus the bounded-run arguments. No kubelet runs it; the test deletes it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from streamflow.catalog import bind_generator_env
from streamflow.generator_spec import POD_TEMPLATE, bounded_run_args
from streamflow.runtime import runtime_for
from streamflow.settings import load_settings

pytestmark = pytest.mark.integration


def _sanitized(api: client.ApiClient, obj: Any) -> Any:
    """Compare in the API's own JSON shape (camelCase, no None fields)."""
    return api.sanitize_for_serialization(obj)


def test_generator_pod_is_created_from_the_template_with_bounded_run_args(
    kubernetes_env: object, api_client: client.ApiClient, ensure_ns: Callable[[str], str]
) -> None:
    settings = load_settings()
    operator = runtime_for(settings).generator()
    assert isinstance(operator, KubernetesPodOperator)
    template = yaml.safe_load(POD_TEMPLATE.read_text())
    namespace = ensure_ns(str(operator.namespace))
    core = client.CoreV1Api(api_client)
    # The ServiceAccount admission plugin refuses a pod whose service account does not exist; on a
    # cluster the overlay creates it (test_manifests checks that the overlay defines it).
    service_account = template["spec"]["serviceAccountName"]
    try:
        core.create_namespaced_service_account(namespace, client.V1ServiceAccount(
            metadata=client.V1ObjectMeta(name=service_account)))
    except ApiException as error:
        assert error.status == 409

    request = operator.build_pod_request_obj(context=None)
    created = operator.pod_manager.create_pod(request)  # the operator's own create call
    try:
        stored = core.read_namespaced_pod(created.metadata.name, namespace)
        want = template["spec"]["containers"][0]
        container = stored.spec.containers[0]
        assert container.image == want["image"]
        assert container.command == want["command"]
        assert container.args == [*want["args"], *bounded_run_args(settings)]
        assert "--total-events" in container.args and str(settings.generator_events) in container.args
        # the template's env with the topic bound to the settings (the suite renames every topic)
        template_env = {e["name"]: e["value"] for e in want["env"]}
        assert {e.name: e.value for e in container.env or []} == bind_generator_env(template_env, settings)
        assert template_env["GENERATOR_TOPIC"] != settings.topic_transactions  # the binding is exercised
        assert _sanitized(api_client, container.security_context) == want["securityContext"]
        assert _sanitized(api_client, stored.spec.security_context) == template["spec"]["securityContext"]
        assert _sanitized(api_client, container.resources) == want["resources"]
        assert stored.spec.service_account_name == service_account
        assert stored.spec.automount_service_account_token is False
        assert stored.spec.restart_policy == "Never"
        assert stored.status.phase == "Pending"  # stored, unscheduled: nothing runs it here
    finally:
        operator.pod_manager.delete_pod(created)
    # An unscheduled pod has no kubelet to confirm termination, so the API server deletes it at once.
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_pod(created.metadata.name, namespace)
    assert gone.value.status == 404
