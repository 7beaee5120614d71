"""Pods really run: a single-node Kubernetes built from processes (tests/k8s_cluster_env.py), our
images imported into containerd, the generator as a pod writing to Kafka, and the real Flink
Kubernetes Operator reconciling one of our FlinkDeployments into Running JobManager + TaskManager pods.

Nothing here writes a status: every ``lifecycleState`` / ``jobStatus`` the tests read was written by
the operator (checked through managedFields). Runs only with STREAMFLOW_TEST_K8S_CLUSTER=1 (conftest).
The order matters and is the file's order: cluster, then the generator's events, then the Flink job
reading them (one FlinkDeployment at a time: 2 cores).
"""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from streamflow.generator_spec import bound_pod_template, bounded_run_args
from streamflow.settings import Settings
from tests.k8s_cluster_env import (
    FIGURES,
    FLINK_NAMESPACE,
    SERVICE_IP,
    Cluster,
    StackEndpoints,
    ensure_operator_image_archive,
    flink_deployment_for_test,
    flink_namespace_objects,
    operator_pod_objects,
    pod_rss_bytes,
)
from tests.k8s_testenv import ensure_crds

pytestmark = [pytest.mark.k8s_cluster, pytest.mark.timeout(1500)]

GENERATOR_EVENTS = 400
FLINK_JOB = "transaction-processor"


def _pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "pod", "-n", namespace, name, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def _wait_pod_done(cluster: Cluster, namespace: str, name: str, timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    pod: dict[str, Any] = {}
    while time.monotonic() < deadline:
        pod = _pod(cluster, namespace, name)
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return pod
        time.sleep(0.5)
    pytest.fail(f"pod {namespace}/{name} not finished after {timeout_s:.0f} s: {json.dumps(pod.get('status'))}")


def _end_offsets(settings: Settings, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "k8s-cluster-test-probe"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        consumer.close()


def test_node_is_ready_and_a_pod_reaches_services_through_cluster_dns(cluster: Cluster) -> None:
    node = json.loads(cluster.kubectl("get", "node", "-o", "json").stdout)["items"][0]
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    probe = ("import socket; a = socket.gethostbyname('kubernetes.default.svc.cluster.local'); "
             "socket.create_connection((a, 443), 5); print('resolved', a)")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dns-probe", "namespace": "default"},
           "spec": {"restartPolicy": "Never", "containers": [{
               "name": "probe", "image": "streamflow/generator:0.1.0", "imagePullPolicy": "Never",
               "command": ["python", "-c", probe]}]}}
    cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(pod))
    done = _wait_pod_done(cluster, "default", "dns-probe")
    log = cluster.kubectl("logs", "-n", "default", "dns-probe").stdout
    assert done["status"]["phase"] == "Succeeded", log
    assert f"resolved {SERVICE_IP}" in log


def test_generator_pod_from_our_image_writes_events_to_kafka(
        cluster: Cluster, stack: Settings, pod_endpoints: StackEndpoints) -> None:
    """The DAG's own pod template and bounded-run arguments (topics bound by the product, event times
    in the past: --backfill), our image, never pulled; only the event count is the test's."""
    pod = bound_pod_template(stack)
    container = pod["spec"]["containers"][0]
    container["imagePullPolicy"] = "Never"
    args = bounded_run_args(stack)
    args[args.index("--total-events") + 1] = str(GENERATOR_EVENTS)
    container["args"] = [*container.get("args", []), *args]
    for env in container["env"]:
        if env["name"] == "GENERATOR_BOOTSTRAP_SERVERS":
            env["value"] = pod_endpoints.kafka_bootstrap
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    sa = pod["spec"].get("serviceAccountName", "default")
    cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": namespace}}]))
    before = _end_offsets(stack, stack.topic_transactions)
    started = time.monotonic()
    cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(pod))
    done = _wait_pod_done(cluster, namespace, name)
    FIGURES["generator_pod_create_to_succeeded_s"] = round(time.monotonic() - started, 1)
    log = cluster.kubectl("logs", "-n", namespace, name).stdout
    assert done["status"]["phase"] == "Succeeded", log[-2000:]
    assert _end_offsets(stack, stack.topic_transactions) - before == GENERATOR_EVENTS


def test_operator_reconciles_our_flink_deployment_to_running_pods(
        cluster: Cluster, stack: Settings, pod_endpoints: StackEndpoints) -> None:
    cluster.install_crds([f for f in ensure_crds() if f.name.endswith(".flink.apache.org-v1.yml")])
    cluster.kubectl("apply", "--server-side", "-f", "-",
                    input_text=yaml.safe_dump_all(flink_namespace_objects(pod_endpoints, cluster.state_dir)))
    t0 = time.monotonic()
    cluster.import_images([ensure_operator_image_archive()])
    FIGURES["operator_image_build_and_import_s"] = round(time.monotonic() - t0, 1)
    cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(operator_pod_objects()))
    deployment = flink_deployment_for_test(FLINK_JOB, pod_endpoints, stack)
    with psycopg.connect(stack.warehouse_dsn, connect_timeout=5) as conn:
        bronze_before = conn.execute("SELECT count(*) FROM bronze.raw_transactions").fetchone()[0]  # type: ignore[index]
    started = time.monotonic()
    cluster.kubectl("apply", "--server-side", "-f", "-", input_text=yaml.safe_dump(deployment))
    status: dict[str, Any] = {}
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        operator_pods = json.loads(cluster.kubectl("get", "pods", "-n", "streamflow-system", "-o", "json").stdout)
        restarts = sum(cs.get("restartCount", 0) for p in operator_pods["items"]
                       for cs in p["status"].get("containerStatuses", []))
        assert restarts == 0, cluster.kubectl("logs", "-n", "streamflow-system", "deploy/flink-kubernetes-operator",
                                              "--previous", check=False).stdout[-3000:]
        fd = json.loads(cluster.kubectl("get", "flinkdeployment", "-n", FLINK_NAMESPACE, FLINK_JOB,
                                        "--show-managed-fields", "-o", "json").stdout)
        status = fd.get("status") or {}
        state = (str(status.get("lifecycleState")), str((status.get("jobStatus") or {}).get("state")))
        if not seen or seen[-1] != state:
            seen.append(state)
            print(f"{time.monotonic() - started:6.1f}s lifecycleState={state[0]} jobStatus={state[1]}")
        if state == ("STABLE", "RUNNING"):
            break
        time.sleep(2)
    else:
        pytest.fail(f"not STABLE/RUNNING after 900 s; states {seen}; status {json.dumps(status)[:3000]}")
    FIGURES["operator_apply_to_stable_running_s"] = round(time.monotonic() - started, 1)
    # The status was written by the operator (its client), never by this test or kubectl.
    writers = {m["manager"] for m in fd["metadata"]["managedFields"] if m.get("subresource") == "status"}
    assert writers and not any(w.startswith("kubectl") for w in writers), writers
    pods = json.loads(cluster.kubectl("get", "pods", "-n", FLINK_NAMESPACE, "-l", f"app={FLINK_JOB}",
                                      "-o", "json").stdout)["items"]
    components = {p["metadata"]["labels"].get("component"): p for p in pods}
    assert set(components) == {"jobmanager", "taskmanager"}, [p["metadata"]["name"] for p in pods]
    FIGURES["rss_bytes_operator"] = sum(pod_rss_bytes(p["metadata"]["uid"]) for p in operator_pods["items"])
    for pod in pods:
        assert pod["status"]["phase"] == "Running", pod["metadata"]["name"]
        main = next(c for c in pod["spec"]["containers"] if c["name"] == "flink-main-container")
        assert main["image"] == "streamflow/flink:0.1.0"
        FIGURES[f"rss_bytes_{pod['metadata']['labels']['component']}"] = pod_rss_bytes(pod["metadata"]["uid"])
    # The job reads what the generator pod wrote and upserts it into bronze through the node address.
    deadline = time.monotonic() + 300
    bronze = bronze_before
    while time.monotonic() < deadline and bronze - bronze_before < GENERATOR_EVENTS:
        with psycopg.connect(stack.warehouse_dsn, connect_timeout=5) as conn:
            bronze = conn.execute("SELECT count(*) FROM bronze.raw_transactions").fetchone()[0]  # type: ignore[index]
        time.sleep(3)
    FIGURES["flink_bronze_rows"] = bronze - bronze_before
    assert bronze - bronze_before >= GENERATOR_EVENTS
    cluster.kubectl("delete", "flinkdeployment", "-n", FLINK_NAMESPACE, FLINK_JOB, "--timeout=180s", check=False)


def test_figures_are_written(figures_file: Any) -> None:
    """Last in the file: the session's figures go to test-output/k8s_cluster_figures.json (written
    when the fixture ends); every figure the tests above measure must be there."""
    wanted = {"cluster_ready_s", "image_import_s", "generator_pod_create_to_succeeded_s",
              "operator_apply_to_stable_running_s", "rss_bytes_jobmanager", "rss_bytes_taskmanager",
              "rss_bytes_operator", "flink_bronze_rows"}
    assert wanted <= set(FIGURES), sorted(wanted - set(FIGURES))
