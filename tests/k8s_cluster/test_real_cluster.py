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
import subprocess
import threading
import time
from pathlib import Path
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
REPO_ROOT = Path(__file__).resolve().parents[2]

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
    # Not the DAG's seed: the same seed makes the same transaction ids, and bootstrap_pipeline's run (later
    # in this session) would count its rows overwritten by a replay of these 400 as missing.
    args[args.index("--seed") + 1] = str(stack.generator_seed + 1)
    container["args"] = [*container.get("args", []), *args]
    for env in container["env"]:
        if env["name"] == "GENERATOR_BOOTSTRAP_SERVERS":
            env["value"] = pod_endpoints.kafka_bootstrap
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    _generator_namespace(cluster, pod)
    before = _end_offsets(stack, stack.topic_transactions)
    started = time.monotonic()
    cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(pod))
    done = _wait_pod_done(cluster, namespace, name)
    FIGURES["generator_pod_create_to_succeeded_s"] = round(time.monotonic() - started, 1)
    log = cluster.kubectl("logs", "-n", namespace, name).stdout
    assert done["status"]["phase"] == "Succeeded", log[-2000:]
    assert _end_offsets(stack, stack.topic_transactions) - before == GENERATOR_EVENTS


@pytest.fixture(scope="module")
def operator(cluster: Cluster, pod_endpoints: StackEndpoints) -> Cluster:
    """The FlinkDeployment CRD, the jobs' namespace (ServiceAccount, Role, warehouse Secret, data volume)
    and the Flink Kubernetes Operator running as a pod from our image, webhook off."""
    cluster.install_crds([f for f in ensure_crds() if f.name.endswith(".flink.apache.org-v1.yml")])
    cluster.kubectl("apply", "--server-side", "-f", "-",
                    input_text=yaml.safe_dump_all(flink_namespace_objects(pod_endpoints, cluster.state_dir)))
    t0 = time.monotonic()
    cluster.import_images([ensure_operator_image_archive()])
    FIGURES["operator_image_build_and_import_s"] = round(time.monotonic() - t0, 1)
    cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(operator_pod_objects()))
    return cluster


def _operator_restarts(cluster: Cluster) -> tuple[int, dict[str, Any]]:
    pods = json.loads(cluster.kubectl("get", "pods", "-n", "streamflow-system", "-o", "json").stdout)
    statuses = [cs for p in pods["items"] for cs in p["status"].get("containerStatuses", [])]
    return sum(cs.get("restartCount", 0) for cs in statuses), pods


def _status_writers(fd: dict[str, Any]) -> set[str]:
    """Who wrote the FlinkDeployment's status (managedFields of the status subresource)."""
    return {m["manager"] for m in fd["metadata"]["managedFields"] if m.get("subresource") == "status"}


def _generator_namespace(cluster: Cluster, pod: dict[str, Any]) -> None:
    """The generator pod's namespace and ServiceAccount (the overlay creates them on a real install)."""
    namespace, sa = pod["metadata"]["namespace"], pod["spec"].get("serviceAccountName", "default")
    cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": namespace}}]))


def test_operator_reconciles_our_flink_deployment_to_running_pods(
        operator: Cluster, stack: Settings, pod_endpoints: StackEndpoints) -> None:
    cluster = operator
    deployment = flink_deployment_for_test(FLINK_JOB, pod_endpoints, stack)
    with psycopg.connect(stack.warehouse_dsn, connect_timeout=5) as conn:
        bronze_before = conn.execute("SELECT count(*) FROM bronze.raw_transactions").fetchone()[0]  # type: ignore[index]
    started = time.monotonic()
    cluster.kubectl("apply", "--server-side", "-f", "-", input_text=yaml.safe_dump(deployment))
    status: dict[str, Any] = {}
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        restarts, operator_pods = _operator_restarts(cluster)
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
    writers = _status_writers(fd)
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


def _write_spec_dir(root: Path, stack: Settings, endpoints: StackEndpoints) -> Path:
    """What a user's overlay for this cluster would render, laid out like k8s/base (the folder
    STREAMFLOW_K8S_SPEC_DIR names): the three FlinkDeployments as the test overlay runs them (our image,
    Kafka and PostgreSQL at the node address, requests that fit three jobs on 2 cores, a 10 s checkpoint
    interval so the sensors' stable window is 20 s) and the generator's pod template (our image, never
    pulled, Kafka at the node address)."""
    from streamflow.catalog import flink_jobs
    from streamflow.generator_spec import POD_TEMPLATE, load_pod_template
    from streamflow.runtime.kubernetes import K8S_BASE

    for job in flink_jobs():
        fd = flink_deployment_for_test(job.name, endpoints, stack, jm_cpu=0.1, tm_cpu=0.2, tm_memory="1280m",
                                       checkpoint_interval="10s")
        target = root / job.spec_path.relative_to(K8S_BASE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(fd))
    pod = load_pod_template()
    container = pod["spec"]["containers"][0]
    container["imagePullPolicy"] = "Never"
    for env in container["env"]:
        if env["name"] == "GENERATOR_BOOTSTRAP_SERVERS":
            env["value"] = endpoints.kafka_bootstrap
    target = root / POD_TEMPLATE.relative_to(K8S_BASE)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(pod))
    return root


class PodWatch:
    """Every pod phase seen on the cluster while a DAG run goes on (polled each second in a thread):
    the generator pod lives seconds and KubernetesPodOperator deletes it when it succeeds."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.seen: dict[str, dict[str, Any]] = {}  # pod name -> {"phases": [...], "images": [...], "namespace"}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PodWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        began = time.monotonic()
        while not self._stop.is_set():
            out = self.cluster.kubectl("get", "pods", "-A", "-o", "json", check=False)
            if out.returncode == 0:
                for pod in json.loads(out.stdout)["items"]:
                    name, phase = pod["metadata"]["name"], (pod.get("status") or {}).get("phase", "?")
                    entry = self.seen.setdefault(name, {"phases": [], "namespace": pod["metadata"]["namespace"],
                                                        "labels": pod["metadata"].get("labels") or {},
                                                        "images": [c["image"] for c in pod["spec"]["containers"]]})
                    if not entry["phases"] or entry["phases"][-1] != phase:
                        entry["phases"].append(phase)
                        print(f"{time.monotonic() - began:6.1f}s pod {entry['namespace']}/{name}: {phase}", flush=True)
            self._stop.wait(1.0)


def test_bootstrap_pipeline_runs_on_the_cluster(
        operator: Cluster, stack: Settings, pod_endpoints: StackEndpoints) -> None:
    """Step C: Airflow (outside the cluster, with its kubeconfig) runs ``bootstrap_pipeline`` with
    STREAMFLOW_RUNTIME=kubernetes: the DAG applies the three FlinkDeployments, the operator reconciles
    them into pods from our Flink image, the sensors see the operator's status, the generator runs as a
    KubernetesPodOperator pod from our image, bronze fills, Cosmos builds silver and gold."""
    from streamflow.airflow_client import AirflowClient, follow_run
    from streamflow.catalog import flink_jobs
    from streamflow.generator_spec import load_pod_template
    from streamflow.kubernetes_access import FLINK_PLURAL
    from streamflow.pipeline import row_counts
    from streamflow.settings import Runtime
    from streamflow.stack import supervisor

    cluster = operator
    spec_dir = _write_spec_dir(cluster.state_dir / "spec-dir", stack, pod_endpoints)
    _generator_namespace(cluster, load_pod_template())
    for job in flink_jobs():  # a job left by an earlier test would be patched, not created: start clean
        cluster.kubectl("delete", FLINK_PLURAL, "-n", FLINK_NAMESPACE, job.name, "--ignore-not-found",
                        "--timeout=180s", check=False)
    on_k8s = stack.model_copy(update={
        "runtime": Runtime.KUBERNETES, "k8s_in_cluster": False, "k8s_config_file": str(cluster.kubeconfig),
        "k8s_spec_dir": str(spec_dir), "k8s_namespace_processing": FLINK_NAMESPACE,
        "kafka_bootstrap_servers": stack.kafka_bootstrap, "postgres_password": stack.resolved_postgres_password})
    if not (stack.dbt_target_dir / "manifest.json").exists():  # what set-up makes (the DAGs render from it)
        subprocess.run([str(REPO_ROOT / "bin" / "streamflow"), "prepare"], check=True, timeout=600)
    supervisor.up(on_k8s, ["airflow"])
    try:
        client = AirflowClient.from_settings(on_k8s)
        client.wait_for_dag("bootstrap_pipeline", timeout_s=300)  # parsed with the Kubernetes runtime
        started = time.monotonic()
        with PodWatch(cluster) as pods:
            run_id = client.trigger("bootstrap_pipeline")
            state = follow_run(client, "bootstrap_pipeline", run_id, timeout_s=1200, poll_s=5)
        FIGURES["bootstrap_pipeline_on_kubernetes_s"] = round(time.monotonic() - started, 1)
        tasks = {t["task_id"]: t["state"] for t in client.task_instances("bootstrap_pipeline", run_id)}
        assert state == "success", {k: v for k, v in tasks.items() if v != "success"}
        jobs_seen: dict[str, dict[str, Any]] = {}
        for job in flink_jobs():
            assert tasks[f"deploy_{job.key}"] == tasks[f"wait_{job.key}_running"] == "success"
            fd = json.loads(cluster.kubectl("get", FLINK_PLURAL, "-n", FLINK_NAMESPACE, job.name,
                                            "--show-managed-fields", "-o", "json").stdout)
            status = fd.get("status") or {}
            jobs_seen[job.name] = {"lifecycleState": status.get("lifecycleState"),
                                   "jobStatus": (status.get("jobStatus") or {}).get("state"),
                                   "status_writers": sorted(_status_writers(fd))}
            running = json.loads(cluster.kubectl("get", "pods", "-n", FLINK_NAMESPACE, "-l", f"app={job.name}",
                                                 "-o", "json").stdout)["items"]
            for pod in running:
                component = pod["metadata"]["labels"].get("component")
                main = next(c for c in pod["spec"]["containers"] if c["name"] == "flink-main-container")
                jobs_seen[job.name][f"{component}_pod"] = (pod["metadata"]["name"], pod["status"]["phase"],
                                                           main["image"])
                FIGURES[f"rss_bytes_{job.key}_{component}"] = pod_rss_bytes(pod["metadata"]["uid"])
        print("FlinkDeployments after the run:", json.dumps(jobs_seen, indent=1))
        for name, seen in jobs_seen.items():
            assert (seen["lifecycleState"], seen["jobStatus"]) == ("STABLE", "RUNNING"), (name, seen)
            assert seen["status_writers"] and not any(w.startswith("kubectl") for w in seen["status_writers"])
            for component in ("jobmanager", "taskmanager"):
                assert seen.get(f"{component}_pod", (None, None, None))[1:] == ("Running", "streamflow/flink:0.1.0"), \
                    (name, component, seen)
        # the run's own generator pod: KubernetesPodOperator labels it with the DAG, task and run
        ours = {"dag_id": "bootstrap_pipeline", "task_id": "run_generator"}
        generator_pods = {n: p for n, p in pods.seen.items() if ours.items() <= p["labels"].items()}
        assert generator_pods, sorted(pods.seen)
        assert all(p["images"] == ["streamflow/generator:0.1.0"] for p in generator_pods.values()), generator_pods
        assert any("Succeeded" in p["phases"] or "Running" in p["phases"] for p in generator_pods.values()), \
            generator_pods
        counts = row_counts(on_k8s)
        print("row counts:", json.dumps(counts))
        assert (counts["bronze"]["raw_transactions"] or 0) >= stack.generator_events
        assert counts["gold"]["fct_transactions"] and counts["gold"]["fct_transactions"] > 0, counts["gold"]
        FIGURES["bootstrap_bronze_rows"] = counts["bronze"]["raw_transactions"]
        assert _operator_restarts(cluster)[0] == 0
    finally:
        supervisor.down(on_k8s, ["airflow"])
        for job in flink_jobs():
            cluster.kubectl("delete", FLINK_PLURAL, "-n", FLINK_NAMESPACE, job.name, "--timeout=180s", check=False)


def test_argo_cd_application_is_accepted_by_the_cluster(cluster: Cluster) -> None:
    """k8s/gitops/streamflow.yaml against Argo CD's real CRDs on this API server (server-side dry run,
    strict field validation); a misspelt field in the same Application is refused (the check can fail)."""
    cluster.install_crds([f for f in ensure_crds() if f.parent.name.startswith("argocd-")])
    cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}))
    manifest = (REPO_ROOT / "k8s" / "gitops" / "streamflow.yaml").read_text()
    accepted = cluster.kubectl("apply", "--server-side", "--dry-run=server", "--validate=strict", "-f", "-",
                               input_text=manifest)
    print(accepted.stdout)
    assert accepted.stdout.count("(server dry run)") == 2, accepted.stdout
    broken = next(d for d in yaml.safe_load_all(manifest) if d and d["kind"] == "Application")
    broken["spec"]["syncPolicy"]["automated"]["prunee"] = True
    refused = cluster.kubectl("apply", "--server-side", "--dry-run=server", "--validate=strict", "-f", "-",
                              input_text=yaml.safe_dump(broken), check=False)
    assert refused.returncode != 0 and "prunee" in refused.stderr, (refused.stdout, refused.stderr)


def test_figures_are_written(figures_file: Any) -> None:
    """Last in the file: the session's figures go to test-output/k8s_cluster_figures.json (written
    when the fixture ends); every figure the tests above measure must be there."""
    wanted = {"cluster_ready_s", "image_import_s", "generator_pod_create_to_succeeded_s",
              "operator_apply_to_stable_running_s", "rss_bytes_jobmanager", "rss_bytes_taskmanager",
              "rss_bytes_operator", "flink_bronze_rows", "bootstrap_pipeline_on_kubernetes_s",
              "bootstrap_bronze_rows"}
    assert wanted <= set(FIGURES), sorted(wanted - set(FIGURES))
