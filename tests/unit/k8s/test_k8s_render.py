"""The single-node overlay renders with the pinned kustomize, and every object it yields is valid:
core kinds against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown fields are
errors), custom resources against the real CRDs of the pinned Strimzi, CloudNativePG and Flink
operator versions (jsonschema over each served version's openAPIV3Schema, with the API server's
strict field validation)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from k8s_static import NAMESPACES, Doc, pod_template, ref, validate_custom, versions

from streamflow.catalog import topic_renames
from streamflow.settings import load_settings

K8S_VERSION = versions()["K8S_SCHEMA_VERSION"]
CRD_GROUPS = {"kafka.strimzi.io", "postgresql.cnpg.io", "flink.apache.org"}


def _is_custom(doc: Doc) -> bool:
    return str(doc["apiVersion"]).split("/")[0] in CRD_GROUPS


def _validate_core(doc: Doc) -> list[str]:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{ref(doc)}: {'.'.join(map(str, error.path))}: {error.message}"]
    return []


def test_overlay_renders_the_platform(rendered: list[Doc]) -> None:
    kinds = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in rendered}
    expected = {
        *(("Namespace", None, ns) for ns in NAMESPACES),
        ("Kafka", "streamflow-kafka", "streamflow"),
        ("KafkaNodePool", "streamflow-kafka", "dual-role"),
        ("Cluster", "streamflow-data", "streamflow-warehouse"),
        ("Database", "streamflow-data", "airflow"),
        ("Role", "streamflow-processing", "streamflow-airflow"),
        ("RoleBinding", "streamflow-processing", "streamflow-airflow"),
        ("ServiceAccount", "streamflow-processing", "streamflow-generator"),
        ("FlinkDeployment", "streamflow-processing", "fraud-detector"),
        ("FlinkDeployment", "streamflow-processing", "transaction-processor"),
        ("FlinkDeployment", "streamflow-processing", "realtime-aggregator"),
        ("Secret", "streamflow-data", "warehouse-credentials"),
        ("Secret", "streamflow-processing", "warehouse-credentials"),
        ("Secret", "streamflow-airflow", "warehouse-credentials"),
        ("Secret", "streamflow-data", "airflow-db-credentials"),
        ("Secret", "streamflow-airflow", "airflow-metadata"),
        ("Secret", "streamflow-airflow", "airflow-keys"),
        ("Secret", "streamflow-airflow", "airflow-connections"),
        *(("NetworkPolicy", ns, "default-deny") for ns in NAMESPACES),
    }
    assert expected - kinds == set()
    topics = {d["spec"]["topicName"]: d["spec"] for d in rendered if d["kind"] == "KafkaTopic"}
    # the written names are the settings' defaults (one home); a stack that renames them gets its topics
    # from bootstrap_pipeline's provision step, and an overlay patches these KafkaTopics (README)
    written = set(topic_renames(load_settings(state_dir=Path("/nonexistent"), postgres_password="x")))
    assert set(topics) == written == {"transactions.raw", "fraud.alerts", "metrics.realtime", "dlq.errors"}
    assert {spec["partitions"] for spec in topics.values()} == {3}


def test_every_namespaced_object_lives_in_a_streamflow_namespace(rendered: list[Doc]) -> None:
    stray = [ref(d) for d in rendered if d["kind"] != "Namespace" and d["metadata"].get("namespace") not in NAMESPACES]
    assert stray == []


def test_core_objects_match_the_kubernetes_openapi_schema(rendered: list[Doc]) -> None:
    core = [d for d in rendered if not _is_custom(d)]
    assert len(core) >= 40   # namespaces, secrets, RBAC, PVCs, ~30 NetworkPolicies
    errors = [e for d in core for e in _validate_core(d)]
    assert errors == []


def test_generator_pod_template_matches_the_pod_schema() -> None:
    # Launched by Airflow (KubernetesPodOperator), not applied by kustomize, but still a Pod.
    assert _validate_core(pod_template()) == []


def test_custom_resources_match_their_crd_schemas(rendered: list[Doc], crds: dict[tuple[str, str], Doc]) -> None:
    custom = [d for d in rendered if _is_custom(d)]
    assert {d["kind"] for d in custom} == {"Kafka", "KafkaNodePool", "KafkaTopic", "Cluster", "Database",
                                           "FlinkDeployment"}
    errors = [e for d in custom for e in validate_custom(d, crds)]
    assert errors == []


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"),
    [
        # a misspelt field (the API server would reject it with strict field validation)
        ("KafkaNodePool", lambda d: d["spec"].__setitem__("replicass", 1), "replicass"),
        # a wrong type deep inside the FlinkDeployment's embedded Pod schema
        ("FlinkDeployment", lambda d: d["spec"]["podTemplate"]["spec"]["securityContext"].__setitem__(
            "runAsNonRoot", "yes"), "is not of type 'boolean'"),
        # a value outside the CRD's enum
        ("FlinkDeployment", lambda d: d["spec"]["job"].__setitem__("upgradeMode", "sometimes"), "sometimes"),
        # a required field missing
        ("Cluster", lambda d: d["spec"].pop("instances"), "instances"),
    ],
)
def test_crd_validation_rejects_broken_resources(rendered: list[Doc], crds: dict[tuple[str, str], Doc], kind: str,
                                                 mutate: Any, expected: str) -> None:
    """The schema check has teeth: each mutation of a valid rendered object is reported."""
    doc = copy.deepcopy(next(d for d in rendered if d["kind"] == kind))
    assert validate_custom(doc, crds) == []
    mutate(doc)
    errors = validate_custom(doc, crds)
    assert any(expected in e for e in errors), errors


def test_core_validation_rejects_unknown_fields() -> None:
    pod = copy.deepcopy(pod_template())
    pod["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert any("imagePullPolicyy" in e for e in _validate_core(pod))
