"""Policy checks over everything the deployment runs: the rendered overlay, the generator pod template
(launched by Airflow) and the Helm values of Airflow and the operators.
  - every pod: non-root, no privilege escalation, all capabilities dropped, seccomp RuntimeDefault,
    resources requested and limited;
  - images: explicit tags (never `latest`), ours named after images/<name> with the pinned tag;
  - RBAC: namespaced, exactly the verbs Airflow's tasks need;
  - NetworkPolicies: default deny everywhere and only the intended flows (evaluated, not just listed);
  - wiring: the addresses, secrets and settings the pods use exist in what is rendered."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_static import (
    API_SERVER_IP,
    HELM,
    IMAGES,
    K8S,
    NAMESPACES,
    OVERLAY,
    REPO,
    Doc,
    Endpoint,
    allowed,
    flink_deployments,
    load_yaml,
    pod,
    pod_specs,
    pod_template,
    ref,
    split_image,
    versions,
)

from streamflow.settings import Settings

PINNED = versions()
AIRFLOW_VALUES: Doc = load_yaml(HELM / "airflow-values.yaml")
AIRFLOW_RELEASE = "airflow"   # `helm upgrade --install airflow ...` in scripts/k8s_deploy.sh


# --- pods -----------------------------------------------------------------------------------------
def _all_pod_specs(rendered: list[Doc]) -> list[tuple[str, Doc]]:
    specs = [s for d in rendered for s in pod_specs(d)]
    specs.append(("generator pod template", pod_template()["spec"]))
    return specs


def _containers(spec: Doc) -> Iterator[Doc]:
    yield from spec.get("initContainers") or []
    yield from spec.get("containers") or []


def _security_problems(where: str, spec: Doc) -> list[str]:
    problems = []
    pod_sc = spec.get("securityContext") or {}
    for c in _containers(spec):
        sc = {**pod_sc, **(c.get("securityContext") or {})}
        name = f"{where} container {c.get('name')}"
        if sc.get("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            problems.append(f"{name}: runAsUser 0")
        if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if "ALL" not in ((c.get("securityContext") or {}).get("capabilities") or {}).get("drop", []):
            problems.append(f"{name}: capabilities.drop lacks ALL")
        if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: seccompProfile is not RuntimeDefault")
    return problems


def test_there_are_pods_to_check(rendered: list[Doc]) -> None:
    where = {w for w, _ in _all_pod_specs(rendered)}
    assert {"generator pod template", "FlinkDeployment streamflow-processing/fraud-detector"} <= where


def test_every_pod_is_non_root_without_escalation_or_capabilities(rendered: list[Doc]) -> None:
    problems = [p for where, spec in _all_pod_specs(rendered) for p in _security_problems(where, spec)]
    assert problems == []


def test_the_security_check_catches_a_root_container() -> None:
    spec = pod_template()["spec"]
    bad = {**spec, "securityContext": {**spec["securityContext"], "runAsUser": 0, "runAsNonRoot": False}}
    assert len(_security_problems("probe", bad)) == 2


def _has_resources(res: Any, *keys: str) -> bool:
    return isinstance(res, dict) and all(k in (res.get(part) or {}) for part in ("requests", "limits") for k in keys)


def test_every_workload_sets_resources(rendered: list[Doc]) -> None:
    missing = []
    for doc in rendered:
        spec = doc.get("spec") or {}
        if doc["kind"] == "FlinkDeployment":
            # The operator sizes JobManager/TaskManager containers from these (requests = limits).
            for part in ("jobManager", "taskManager"):
                res = spec[part].get("resource") or {}
                if not {"cpu", "memory"} <= set(res):
                    missing.append(f"{ref(doc)} {part}.resource")
        elif doc["kind"] == "KafkaNodePool" and not _has_resources(spec.get("resources"), "cpu", "memory"):
            missing.append(ref(doc))
        elif doc["kind"] == "Kafka":
            for op_name, op in (spec.get("entityOperator") or {}).items():
                if isinstance(op, dict) and not _has_resources(op.get("resources"), "cpu", "memory"):
                    missing.append(f"{ref(doc)} entityOperator.{op_name}")
        elif doc["kind"] == "Cluster" and not _has_resources(spec.get("resources"), "cpu", "memory"):
            missing.append(ref(doc))
        else:
            for where, pod_spec in pod_specs(doc):
                missing += [f"{where} {c['name']}" for c in _containers(pod_spec)
                            if not _has_resources(c.get("resources"), "cpu", "memory")]
    missing += [f"generator {c['name']}" for c in _containers(pod_template()["spec"])
                if not _has_resources(c.get("resources"), "cpu", "memory")]
    assert missing == []


AIRFLOW_COMPONENTS = ("scheduler", "apiServer", "dagProcessor", "triggerer", "migrateDatabaseJob", "createUserJob")


def test_airflow_chart_values_make_every_component_restricted_and_sized() -> None:
    values = AIRFLOW_VALUES
    pod_sc = values["securityContexts"]["pod"]
    container_sc = values["securityContexts"]["containers"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == values["uid"] != 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container_sc["allowPrivilegeEscalation"] is False and container_sc["capabilities"]["drop"] == ["ALL"]
    unsized = [c for c in AIRFLOW_COMPONENTS if not _has_resources(values[c].get("resources"), "cpu", "memory")]
    unsized += [f"{c}.logGroomerSidecar" for c in ("scheduler", "dagProcessor", "triggerer")
                if not _has_resources(values[c]["logGroomerSidecar"].get("resources"), "cpu", "memory")]
    assert unsized == []
    # Components we do not run must stay off (they would come without our sizing).
    assert not values["redis"]["enabled"] and not values["postgresql"]["enabled"] and not values["statsd"]["enabled"]
    assert values["executor"] == "LocalExecutor"


@pytest.mark.parametrize(
    ("values_file", "resources_path"),
    [("strimzi-values.yaml", ("resources",)), ("cnpg-values.yaml", ("resources",)),
     ("flink-operator-values.yaml", ("operatorPod", "resources"))],
)
def test_operator_values_are_sized_and_non_root(values_file: str, resources_path: tuple[str, ...]) -> None:
    values = load_yaml(HELM / values_file)
    res: Any = values
    for key in resources_path:
        res = res[key]
    assert _has_resources(res, "cpu", "memory")
    text = (HELM / values_file).read_text()
    assert "latest" not in re.sub(r"#.*", "", text)


# --- images ---------------------------------------------------------------------------------------
def _image_refs(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(where, image) for every `image:` string and every {repository, tag} pair in a document."""
    if isinstance(node, dict):
        if isinstance(node.get("image"), str):
            yield path + ".image", node["image"]
        if isinstance(node.get("repository"), str) and "tag" in node:
            yield path, f"{node['repository']}:{node['tag']}"
        for key, value in node.items():
            yield from _image_refs(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _image_refs(value, f"{path}[{i}]")


def _every_image(rendered: list[Doc]) -> list[tuple[str, str]]:
    refs = [(ref(d) + w, img) for d in rendered for w, img in _image_refs(d)]
    refs += [("generator pod template" + w, img) for w, img in _image_refs(pod_template())]
    for values in sorted(HELM.glob("*.yaml")):
        refs += [(values.name + w, img) for w, img in _image_refs(load_yaml(values))]
    refs.append(("airflow-values defaultAirflow*",
                 f"{AIRFLOW_VALUES['defaultAirflowRepository']}:{AIRFLOW_VALUES['defaultAirflowTag']}"))
    return refs


def test_every_image_has_an_explicit_tag_and_none_is_latest(rendered: list[Doc]) -> None:
    refs = _every_image(rendered)
    assert len(refs) >= 6
    bad = [f"{w}: {img}" for w, img in refs if split_image(img)[1] in (None, "", "latest")]
    assert bad == []


def test_our_images_are_built_from_images_dir_with_the_pinned_tag(rendered: list[Doc]) -> None:
    ours = [(w, img) for w, img in _every_image(rendered) if img.startswith("streamflow/")]
    names = {split_image(img)[0].split("/", 1)[1] for _, img in ours}
    assert names == {"airflow", "flink", "generator"}
    # plus the Flink operator's image, which the operator's Helm values name (not the overlay)
    assert {p.parent.name for p in IMAGES.glob("*/Dockerfile")} == names | {"flink-operator"}
    wrong = [f"{w}: {img}" for w, img in ours if split_image(img)[1] != PINNED["STREAMFLOW_IMAGE_TAG"]]
    assert wrong == []


# --- RBAC -----------------------------------------------------------------------------------------
def test_rbac_is_namespaced_and_least_privilege(rendered: list[Doc]) -> None:
    assert not [ref(d) for d in rendered if d["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    roles = [d for d in rendered if d["kind"] == "Role"]
    assert [(r["metadata"]["namespace"], r["metadata"]["name"]) for r in roles] == [
        ("streamflow-processing", "streamflow-airflow")]
    rules = {(g, r): set(rule["verbs"]) for rule in roles[0]["rules"]
             for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules == {
        ("flink.apache.org", "flinkdeployments"): {"get", "list", "watch", "create", "patch"},
        ("", "pods"): {"create", "get", "list", "watch", "patch", "delete"},
        ("", "pods/log"): {"get"},
        ("", "events"): {"list"},
        ("", "namespaces"): {"get"},
    }
    ns_rule = next(rule for rule in roles[0]["rules"] if rule["resources"] == ["namespaces"])
    assert ns_rule["resourceNames"] == ["streamflow-processing"]   # its own namespace object only
    assert not any("*" in rule["verbs"] or "*" in rule["resources"] for rule in roles[0]["rules"])


def test_role_is_bound_to_the_service_account_that_runs_airflow_tasks(rendered: list[Doc]) -> None:
    binding = next(d for d in rendered if d["kind"] == "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "streamflow-airflow"}
    # LocalExecutor: tasks run in the scheduler pod, whose service account the chart names <release>-scheduler.
    assert AIRFLOW_VALUES["executor"] == "LocalExecutor"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{AIRFLOW_RELEASE}-scheduler",
                                    "namespace": "streamflow-airflow"}]
    deploy = (REPO / "scripts" / "k8s_deploy.sh").read_text()
    assert f"helm upgrade --install {AIRFLOW_RELEASE} airflow" in deploy


def test_generator_identity_has_no_api_access(rendered: list[Doc]) -> None:
    sa = next(d for d in rendered if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "streamflow-generator")
    assert sa["automountServiceAccountToken"] is False
    template = pod_template()
    assert template["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    assert template["metadata"]["namespace"] == sa["metadata"]["namespace"]
    bound = {s["name"] for d in rendered if d["kind"] == "RoleBinding" for s in d["subjects"]}
    assert sa["metadata"]["name"] not in bound


# --- NetworkPolicies ------------------------------------------------------------------------------
SCHEDULER = pod("airflow scheduler", "streamflow-airflow", {"component": "scheduler", "release": "airflow",
                                                            "tier": "airflow"})
API_SERVER = pod("airflow api-server", "streamflow-airflow", {"component": "api-server", "release": "airflow"})
BROKER = pod("kafka broker", "streamflow-kafka",
             {"strimzi.io/cluster": "streamflow", "strimzi.io/kind": "Kafka",
              "strimzi.io/broker-role": "true", "strimzi.io/controller-role": "true"})
POSTGRES = pod("postgres", "streamflow-data",
               {"cnpg.io/cluster": "streamflow-warehouse", "cnpg.io/instanceRole": "primary"})
FLINK_TM = pod("flink taskmanager", "streamflow-processing",
               {"type": "flink-native-kubernetes", "app": "fraud-detector", "component": "taskmanager"})
FLINK_JM = pod("flink jobmanager", "streamflow-processing",
               {"type": "flink-native-kubernetes", "app": "fraud-detector", "component": "jobmanager"})
OTHER_JOB_TM = pod("another job's taskmanager", "streamflow-processing",
                   {"type": "flink-native-kubernetes", "app": "transaction-processor", "component": "taskmanager"})
GENERATOR = pod("generator", "streamflow-processing", pod_template()["metadata"]["labels"])
OPERATOR = pod("an operator", "streamflow-system", {"app.kubernetes.io/name": "strimzi-cluster-operator"})
COREDNS = pod("coredns", "kube-system", {"k8s-app": "kube-dns"})
KUBE_API = Endpoint("kube-apiserver", None, ip=API_SERVER_IP)
INTERNET = Endpoint("an address on the internet", None, ip="198.51.100.7")
NODE = Endpoint("another node address", None, ip="203.0.113.11")
OTHER = pod("some pod elsewhere", "default", {"app": "x"})

FLOWS = [  # (src, dst, port, expected)
    (SCHEDULER, BROKER, 9092, True), (SCHEDULER, POSTGRES, 5432, True), (SCHEDULER, KUBE_API, 443, True),
    (SCHEDULER, KUBE_API, 6443, True), (API_SERVER, POSTGRES, 5432, True), (SCHEDULER, API_SERVER, 8080, True),
    (FLINK_TM, BROKER, 9092, True), (FLINK_TM, POSTGRES, 5432, True), (FLINK_JM, KUBE_API, 443, True),
    (FLINK_JM, FLINK_TM, 6122, True), (GENERATOR, BROKER, 9092, True), (OPERATOR, FLINK_JM, 8081, True),
    (OPERATOR, POSTGRES, 8000, True), (OPERATOR, BROKER, 9091, True), (OPERATOR, KUBE_API, 443, True),
    (OTHER, API_SERVER, 8080, True),
    # denied: the generator only talks to Kafka; nothing but its clients reaches Kafka/Postgres; no
    # one reaches Airflow except its UI port; data stores do not call out.
    (GENERATOR, POSTGRES, 5432, False), (GENERATOR, KUBE_API, 443, False), (GENERATOR, SCHEDULER, 8793, False),
    (FLINK_TM, SCHEDULER, 8793, False), (OTHER, BROKER, 9092, False), (OTHER, POSTGRES, 5432, False),
    (BROKER, POSTGRES, 5432, False), (POSTGRES, BROKER, 9092, False), (SCHEDULER, BROKER, 9091, False),
    (SCHEDULER, FLINK_JM, 8081, False), (FLINK_TM, KUBE_API, 22, False), (OTHER, SCHEDULER, 8793, False),
    (BROKER, KUBE_API, 22, False),
    # Flink pods among themselves (RPC 6123, blob 6124, data exchange), also across jobs.
    (FLINK_TM, FLINK_JM, 6123, True), (FLINK_TM, FLINK_JM, 6124, True), (OTHER_JOB_TM, FLINK_JM, 6123, True),
    # The generator shares the namespace with the Flink pods but reaches none of them: the JobManager's
    # REST API submits and cancels jobs, and the TaskManagers' ports are not for it either.
    (GENERATOR, FLINK_JM, 8081, False), (GENERATOR, FLINK_JM, 6123, False), (GENERATOR, FLINK_TM, 6122, False),
    (FLINK_TM, GENERATOR, 8080, False), (SCHEDULER, FLINK_TM, 6122, False),
    # The API server is reached at its address only: nothing leaves the cluster on 443/6443 elsewhere.
    (SCHEDULER, INTERNET, 443, False), (SCHEDULER, NODE, 6443, False), (FLINK_JM, INTERNET, 443, False),
    (OPERATOR, INTERNET, 443, False), (BROKER, INTERNET, 443, False), (POSTGRES, INTERNET, 6443, False),
    (API_SERVER, INTERNET, 443, False), (FLINK_JM, KUBE_API, 6443, True), (POSTGRES, KUBE_API, 443, True),
    (BROKER, KUBE_API, 443, True), (OPERATOR, KUBE_API, 6443, True),
]


@pytest.mark.parametrize(("src", "dst", "port", "expected"), FLOWS,
                         ids=[f"{s.name}->{d.name}:{p}" for s, d, p, _ in FLOWS])
def test_network_flows(rendered: list[Doc], src: Endpoint, dst: Endpoint, port: int, expected: bool) -> None:
    policies = [d for d in rendered if d["kind"] == "NetworkPolicy"]
    assert allowed(policies, src, dst, port) is expected


def _egress_ip_blocks(policies: list[Doc]) -> list[tuple[str, Doc]]:
    return [(ref(p), peer["ipBlock"]) for p in policies for rule in p["spec"].get("egress") or []
            for peer in rule.get("to") or [] if "ipBlock" in peer]


def test_egress_leaves_the_cluster_only_to_the_api_server_address(rendered: list[Doc]) -> None:
    """No 0.0.0.0/0 (or any range) in an egress rule: the only off-cluster destination is the API
    server, at the address the overlay rendered for, and every policy that reaches it is labelled so
    the overlay's replacement finds it."""
    policies = [d for d in rendered if d["kind"] == "NetworkPolicy"]
    blocks = _egress_ip_blocks(policies)
    assert len(blocks) == len(NAMESPACES)   # one API-server rule per namespace
    assert [(where, block) for where, block in blocks if block != {"cidr": f"{API_SERVER_IP}/32"}] == []
    labelled = {ref(p) for p in policies if p["metadata"]["labels"].get("streamflow.io/reaches") == "kube-apiserver"}
    assert labelled == {where for where, _ in blocks}


def test_the_base_alone_fails_closed() -> None:
    """Rendered without the overlay, the API-server rules name TEST-NET-1 (unreachable), never any address."""
    for path in sorted((K8S / "base" / "network-policies").glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        blocks = _egress_ip_blocks(docs)
        assert blocks and all(block == {"cidr": "192.0.2.1/32"} for _, block in blocks), path.name


def _detect(tmp_path: Path, path_dirs: list[Path], **env: str) -> subprocess.CompletedProcess[str]:
    overlay = tmp_path / "overlay"
    shutil.copytree(OVERLAY, overlay, ignore=shutil.ignore_patterns("secrets", "cluster"))
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    for tool in ("bash", "mkdir", "mv", "dirname"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    (tools / "python3").symlink_to(os.path.realpath(sys.executable))   # the interpreter, not a pyenv shim
    return subprocess.run(["bash", str(overlay / "detect-api-server.sh")], capture_output=True, text=True,
                          env={"PATH": ":".join(str(d) for d in [*path_dirs, tools]), **env}, check=False)


def _written(tmp_path: Path) -> str:
    env_file = (tmp_path / "overlay" / "cluster" / "api-server.env").read_text()
    return next(line.split("=", 1)[1] for line in env_file.splitlines() if line.startswith("cidr="))


def test_api_server_address_comes_from_the_cluster(tmp_path: Path) -> None:
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "kubectl").write_text(
        '#!/bin/bash\ncase "$*" in *endpointslices*) echo 10.20.30.40 ;; *current-context*) echo k3s ;; esac\n')
    (fake / "kubectl").chmod(0o755)
    proc = _detect(tmp_path, [fake])
    assert proc.returncode == 0, proc.stderr
    assert _written(tmp_path) == "10.20.30.40/32"


def test_api_server_address_without_a_cluster_fails_closed_and_warns(tmp_path: Path) -> None:
    proc = _detect(tmp_path, [])
    assert proc.returncode == 0, proc.stderr
    assert _written(tmp_path) == "192.0.2.1/32" and "WARNING: no cluster answers kubectl" in proc.stderr


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "10.0.0.0/8", "not-an-address"])
def test_a_wide_api_server_range_is_refused(tmp_path: Path, cidr: str) -> None:
    proc = _detect(tmp_path, [], API_SERVER_CIDR=cidr)
    assert proc.returncode != 0 and "is not a single address or a narrow CIDR" in proc.stderr


# --- Flink REST --------------------------------------------------------------------------------------
@pytest.mark.parametrize("deployment", flink_deployments(), ids=lambda d: d["metadata"]["name"])
def test_flink_web_submission_is_disabled(deployment: Doc) -> None:
    """The JobManager's REST API must not accept uploaded jars (`/jars/upload`, `/jars/<id>/run`): whoever
    reaches port 8081 could otherwise run any code in the cluster. The operator needs none of it."""
    assert deployment["spec"]["flinkConfiguration"].get("web.submit.enable") == "false"


@pytest.mark.parametrize("namespace", sorted(NAMESPACES))
def test_every_namespace_denies_by_default_and_resolves_dns(rendered: list[Doc], namespace: str) -> None:
    policies = [d for d in rendered if d["kind"] == "NetworkPolicy"]
    deny = next(p for p in policies
                if p["metadata"]["namespace"] == namespace and p["metadata"]["name"] == "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    some_pod = pod("any", namespace, {"app": "unlabelled"})
    assert allowed(policies, some_pod, COREDNS, 53, "UDP")
    assert not allowed(policies, some_pod, OTHER, 80)


# --- wiring: addresses, secrets, settings ---------------------------------------------------------
def _kafka_bootstrap(rendered: list[Doc]) -> str:
    kafka = next(d for d in rendered if d["kind"] == "Kafka")
    plain = next(lst for lst in kafka["spec"]["kafka"]["listeners"] if not lst["tls"] and lst["type"] == "internal")
    return f"{kafka['metadata']['name']}-kafka-bootstrap.{kafka['metadata']['namespace']}.svc:{plain['port']}"


def _postgres_rw(rendered: list[Doc]) -> str:
    cluster = next(d for d in rendered if d["kind"] == "Cluster")
    return f"{cluster['metadata']['name']}-rw.{cluster['metadata']['namespace']}.svc"


def _airflow_env() -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in AIRFLOW_VALUES["env"]}


def test_airflow_env_points_at_the_rendered_kafka_and_postgres(rendered: list[Doc]) -> None:
    env = _airflow_env()
    assert env["STREAMFLOW_RUNTIME"] == "kubernetes"
    assert env["STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS"] == _kafka_bootstrap(rendered)
    assert env["STREAMFLOW_POSTGRES_HOST"] == env["STREAMFLOW_WAREHOUSE_HOST"] == _postgres_rw(rendered)
    cluster = next(d for d in rendered if d["kind"] == "Cluster")
    assert env["STREAMFLOW_WAREHOUSE_DB"] == cluster["spec"]["bootstrap"]["initdb"]["database"]
    assert env["STREAMFLOW_POSTGRES_USER"] == cluster["spec"]["bootstrap"]["initdb"]["owner"]
    assert env["STREAMFLOW_K8S_NAMESPACE_PROCESSING"] == "streamflow-processing"
    assert env["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] == "False"
    # settings refuse the kubernetes runtime without a password: it must come from a Secret
    secrets = {e["envName"]: e for e in AIRFLOW_VALUES["secret"]}
    assert secrets["STREAMFLOW_POSTGRES_PASSWORD"]["secretName"] == "warehouse-credentials"  # pragma: allowlist secret


def test_airflow_env_is_accepted_by_the_platform_settings() -> None:
    """The chart's env builds a valid Settings object (names and values), as the pods will."""
    env = _airflow_env()
    fields = set(Settings.model_fields)
    dbt_profile_vars = {f"STREAMFLOW_WAREHOUSE_{k}" for k in ("HOST", "PORT", "USER", "PASSWORD", "DB")}
    names = set(env) | {s["envName"] for s in AIRFLOW_VALUES["secret"]}
    unknown = [n for n in names if n.startswith("STREAMFLOW_")
               and n.removeprefix("STREAMFLOW_").lower() not in fields and n not in dbt_profile_vars]
    assert unknown == []
    values = {k.removeprefix("STREAMFLOW_").lower(): v for k, v in env.items()
              if k.startswith("STREAMFLOW_") and k.removeprefix("STREAMFLOW_").lower() in fields}
    settings = Settings(**values, postgres_password="from-the-secret")
    assert settings.runtime.value == "kubernetes" and settings.k8s_in_cluster is True
    assert settings.kafka_bootstrap == env["STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS"]
    assert str(settings.dbt_executable) == "/opt/dbt-venv/bin/dbt"


def _secret_keys(rendered: list[Doc], namespace: str, name: str) -> set[str]:
    for d in rendered:
        if d["kind"] == "Secret" and d["metadata"]["namespace"] == namespace and d["metadata"]["name"] == name:
            return set(d.get("data") or {}) | set(d.get("stringData") or {})
    return set()


def test_every_secret_reference_resolves(rendered: list[Doc]) -> None:
    refs: list[tuple[str, str, str]] = []   # (namespace, secret, key)
    for s in AIRFLOW_VALUES["secret"]:
        refs.append(("streamflow-airflow", s["secretName"], s["secretKey"]))
    refs += [("streamflow-airflow", AIRFLOW_VALUES["data"]["metadataSecretName"], "connection"),
             ("streamflow-airflow", AIRFLOW_VALUES["fernetKeySecretName"], "fernet-key"),
             ("streamflow-airflow", AIRFLOW_VALUES["apiSecretKeySecretName"], "api-secret-key"),
             ("streamflow-airflow", AIRFLOW_VALUES["jwtSecretName"], "jwt-secret")]
    for doc in rendered:
        ns = doc["metadata"].get("namespace", "")
        if doc["kind"] == "Cluster":
            refs.append((ns, doc["spec"]["bootstrap"]["initdb"]["secret"]["name"], "password"))
            refs += [(ns, r["passwordSecret"]["name"], "password") for r in doc["spec"]["managed"]["roles"]]
        for _, spec in pod_specs(doc):
            for c in _containers(spec):
                refs += [(ns, e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
                         for e in c.get("env") or [] if "secretKeyRef" in (e.get("valueFrom") or {})]
    assert len(refs) >= 10
    missing = [r for r in refs if r[2] not in _secret_keys(rendered, r[0], r[1])]
    assert missing == []


def test_credentials_are_generated_and_never_tracked(rendered: list[Doc]) -> None:
    secrets = [d for d in rendered if d["kind"] == "Secret"]
    basic = [d for d in secrets if d.get("type") == "kubernetes.io/basic-auth"]
    assert len(basic) == 4 and all({"username", "password"} <= set(d["data"]) for d in basic)
    # The generated files are git-ignored: neither tracked nor shown as untracked.
    tracked = re.findall(r"^k8s/overlays/.*secrets/.*$", _git_ls_files(), flags=re.M)
    assert tracked == []
    base = (REPO / "k8s" / "base")
    assert not [p for p in base.rglob("*.yaml") if re.search(r"^kind:\s*Secret\s*$", p.read_text(), flags=re.M)]


def _git_ls_files() -> str:
    return subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "k8s"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout


def test_every_in_cluster_address_names_a_rendered_service(rendered: list[Doc]) -> None:
    """Kafka/PostgreSQL addresses in the FlinkDeployments, the generator template and Airflow's values
    must be the services Strimzi and CloudNativePG create for the rendered resources."""
    kafka, pg = _kafka_bootstrap(rendered), _postgres_rw(rendered)
    found: list[tuple[str, str]] = []
    sources = [(ref(d), d) for d in flink_deployments()] + [("generator pod template", pod_template()),
                                                            ("airflow-values.yaml", AIRFLOW_VALUES)]
    for where, doc in sources:
        found += [(where, m) for m in re.findall(r"[a-z0-9-]+\.[a-z0-9-]+\.svc(?::\d+)?", str(doc))]
    assert len(found) >= 8
    wrong = [f"{w}: {addr}" for w, addr in found
             if addr not in {kafka, pg, f"{pg}:5432"} and not addr.startswith(pg + ":5432/")]
    assert wrong == [], f"expected Kafka at {kafka} and PostgreSQL at {pg}:5432"
